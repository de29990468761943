"""The training models: output shapes and parameter counts per dataset geometry, both namespaces."""

import pytest
import torch

import scratch
from reference import models

GEOMETRIES = {"digits": (1, 8), "mnist": (1, 28), "cifar10": (3, 32)}
# Counted by hand from the layer sizes (weights + biases), so a changed layer cannot pass.
PARAMS = {
    ("softmax", "digits"): 64 * 10 + 10,
    ("mlp", "digits"): 64 * 128 + 128 + 128 * 10 + 10,
    ("sigmoid-mlp", "mnist"): 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10,
    ("lenet", "cifar10"): 456 + 2416 + 400 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10,
    ("lenet", "mnist"): 156 + 2416 + 256 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10,
    ("small-cnn", "cifar10"): 896 + 18496 + 36928 + 1024 * 10 + 10,
    ("small-cnn", "mnist"): 320 + 18496 + 36928 + 576 * 10 + 10,
}


@pytest.mark.parametrize(("name", "dataset"), list(PARAMS), ids=lambda v: str(v))
def test_shapes_and_parameter_counts(name, dataset):
    channels, size = GEOMETRIES[dataset]
    x = torch.randn(2, channels, size, size)
    for nn in (torch.nn, scratch.nn, models.with_backend(scratch.nn, "torch")):
        model = models.build(name, 10, in_channels=channels, image_size=size, nn=nn)
        assert model(x).shape == (2, 10)
        assert sum(p.numel() for p in model.parameters()) == PARAMS[name, dataset]
    assert PARAMS["small-cnn", "cifar10"] < 100_000


def test_with_backend_sets_the_backend():
    model = models.build("mlp", nn=models.with_backend(scratch.nn, "torch"))
    assert model.net[1].backend == "torch" and isinstance(model.net[1], scratch.nn.Linear)


def test_from_checkpoint_builds_the_model_by_name(tmp_path):
    model = models.build("lenet", 10, in_channels=1, image_size=28).double()
    config = {
        "model": "lenet", "dataset": "mnist", "num_classes": 10, "in_channels": 1,
        "image_size": [28, 28], "class_names": [str(i) for i in range(10)], "dtype": "float64",
    }  # fmt: skip
    torch.save({"model": model.state_dict(), "config": config}, tmp_path / "checkpoint.pt")
    loaded, loaded_config = models.from_checkpoint(tmp_path / "checkpoint.pt", nn=scratch.nn)
    assert loaded_config == config and not loaded.training
    assert isinstance(loaded.features[0], scratch.nn.Conv2d)
    for (k, a), (j, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == j and a.dtype == b.dtype and torch.equal(a, b)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        models.build("resnet")
