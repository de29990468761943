"""Whole-model parity on LeNet and VGG16: logits, loss, every gradient; the per-layer report."""

import pytest
import torch

from reference import models
from reference.cli import main
from scratch.verify.model_parity import compare_models, swapped_copy


def _inputs(name, batch, size, dtype, gen):
    x = torch.randn(batch, 3, size, size, generator=gen, dtype=dtype)
    return x, torch.randint(10, (batch,), generator=gen)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_lenet(backend, dtype, gen):
    torch.manual_seed(0)
    model = models.build("lenet").to(dtype)
    report = compare_models(
        model, swapped_copy(model, backend), *_inputs("lenet", 4, 32, dtype, gen)
    )
    assert report.ok, str(report)
    assert len(report.param_errors) == 10  # 5 weights, 5 biases
    assert {r.kind for r in report.layers} >= {"Conv2d", "MaxPool2d", "Linear", "ReLU", "Flatten"}


@pytest.mark.parametrize("name", ["vgg16", "vgg16_bn"])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_vgg_small_input(name, backend, gen):
    """VGG at 32x32 (CI-sized): features end at 1x1, the adaptive pool upsamples to 7x7."""
    torch.manual_seed(0)
    model = models.build(name).double()
    report = compare_models(
        model, swapped_copy(model, backend), *_inputs(name, 2, 32, torch.float64, gen)
    )
    assert report.ok, str(report)
    kinds = {r.kind for r in report.layers}
    assert {"Conv2d", "MaxPool2d", "AdaptiveAvgPool2d", "Dropout", "Linear"} <= kinds
    assert ("BatchNorm2d" in kinds) == (name == "vgg16_bn")


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g * 1.01


def test_broken_forward_is_named_first():
    torch.manual_seed(0)
    model = models.build("lenet").double()
    twin = swapped_copy(model, "numpy")
    twin.features[3].register_forward_hook(lambda m, a, out: out * (1 + 1e-6))
    report = compare_models(model, twin, *_inputs("lenet", 2, 32, torch.float64, torch.Generator()))
    assert report.first_forward_divergence == "features.3"
    assert not report.ok


def test_broken_backward_is_named_first():
    torch.manual_seed(0)
    model = models.build("lenet").double()
    twin = swapped_copy(model, "torch")
    layer = twin.classifier[3]
    forward = layer.forward
    layer.forward = lambda x: _ScaleGrad.apply(forward(x))
    report = compare_models(model, twin, *_inputs("lenet", 2, 32, torch.float64, torch.Generator()))
    assert report.first_forward_divergence is None
    assert report.first_backward_divergence == "classifier.3"
    assert not report.ok


def test_check_model_cli(capsys):
    assert main(["check", "--model", "lenet", "--dtype", "float64", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "first layer diverging in forward: none" in out and "features.0" in out


def test_vgg16_at_224_in_float64(gen):
    """The one full-size check: VGG16 at 224x224, float64, every layer and gradient."""
    torch.manual_seed(0)
    model = models.build("vgg16").double()
    report = compare_models(
        model, swapped_copy(model, "numpy"), *_inputs("vgg16", 1, 224, torch.float64, gen)
    )
    assert report.ok, str(report)


def test_lenet_builds_from_either_namespace(gen):
    """One definition: LeNet(nn=scratch.nn) has torch's state_dict and computes the same."""
    import scratch

    torch.manual_seed(0)
    reference = models.LeNet(nn=torch.nn).double()
    torch.manual_seed(0)
    twin = models.LeNet(nn=scratch.nn).double()
    assert list(twin.state_dict()) == list(reference.state_dict())
    assert all(
        torch.equal(a, b) for a, b in zip(twin.parameters(), reference.parameters(), strict=True)
    )
    assert isinstance(twin.features[0], scratch.nn.Conv2d)
    x, target = _inputs("lenet", 3, 32, torch.float64, gen)
    report = compare_models(reference, twin, x, target)
    assert report.ok, str(report)
