"""The corpus of typical wrong layers: each flagged with the right hint and the right worst
element; each corrected twin passes. Expected indices come from torch alone."""

from pathlib import Path

import numpy as np
import pytest
import torch

import scratch.verify
from scratch.verify.load import import_file

CORPUS = Path(__file__).parent / "verify_corpus"
LINEAR = import_file(CORPUS / "linear.py")
LAYERS = import_file(CORPUS / "layers.py")


def checks(report) -> set[str]:
    return {h.check for h in report.hints}


def argmax(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(t.abs().flatten().argmax()), t.shape))


def torch_linear(seed: int = 0):
    """torch.nn.Linear(5, 3) on the harness's seeded batch: output, grads, the layer."""
    torch.manual_seed(seed)
    layer = torch.nn.Linear(5, 3).double()
    x = torch.randn((4, 5), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x.requires_grad_()
    y = layer(x)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=y.dtype)
    gx, gw = torch.autograd.grad(y, [x, layer.weight], g)
    return {"grad input": gx, "grad weight": gw, "bias": layer.bias.detach()}


# where each bug's largest error must be: the largest element of the tensor it corrupts
WORST = {
    "grad-mean": "grad weight",
    "sign": "grad input",
    "zero-grad": "grad input",
    "normalised": "grad input",
    "bias-ignored": "output",
    "bias-twice": "output",
}


@pytest.mark.parametrize("convention", LINEAR.CONVENTIONS)
@pytest.mark.parametrize("bug", list(LINEAR.BUGS), ids=str)
def test_linear_corpus(bug, convention):
    obj, options = LINEAR.build(bug, convention)
    report = scratch.verify(obj, "Linear(5, 3)", **options)
    if bug is None:
        assert report.passed, report.table()
        assert not report.hints
        return
    assert not report.passed
    assert LINEAR.BUGS[bug] in checks(report), report.table()
    words = {"grad-mean": "1/N (N=4)", "grad-255": "255", "bias-twice": "twice"}.get(bug, "")
    assert any(words in h.message for h in report.hints if h.check == LINEAR.BUGS[bug])
    batched = report.cases[0]
    if bug in WORST:
        what = WORST[bug]
        check = next(c for c in batched.checks if c.what == what and c.dtype == "float64")
        reference = torch_linear()
        if what == "output":
            assert check.worst[1] == argmax(reference["bias"])[0]
        else:
            assert check.worst == argmax(reference[what])


CONV = "Conv2d(2, 3, 3, stride=2, padding=1)"


@pytest.mark.parametrize(
    "bug, hint",
    [
        (None, None),
        ("padding-edge", "padding"),
        ("stride-backward", "stride"),
        ("hw-swap", "transposed"),
        ("grad-mean", "factor"),
    ],
)
def test_conv_corpus(bug, hint):
    report = scratch.verify(LAYERS.make_conv(bug), CONV)
    assert report.passed == (bug is None), report.table()
    if hint:
        assert hint in checks(report), report.table()
    if bug == "padding-edge":  # the output is wrong at the border only: the worst is there
        check = next(c for c in report.cases[0].checks if c.what == "output")
        _, _, y, x = check.worst
        out_h, out_w = report.cases[0].pairs["output"][1].shape[-2:]
        assert y in (0, out_h - 1) or x in (0, out_w - 1)
        inside = report.cases[0].pairs["output"]
        torch.testing.assert_close(
            inside[0][..., 1:-1, 1:-1], inside[1][..., 1:-1, 1:-1], rtol=1e-10, atol=1e-12
        )  # the interior is right
    if bug is None:
        assert [c.name for c in report.unsupported] == [f"{CONV} unbatched"]


@pytest.mark.parametrize("bug", [None, "ties-split", "ties-last"], ids=str)
def test_maxpool_ties(bug):
    report = scratch.verify(LAYERS.make_maxpool(bug), "MaxPool2d(2)")
    assert report.passed == (bug is None), report.table()
    if bug is None:
        return
    assert "ties" in checks(report)
    failed = [c for c in report.cases if c.failed]
    assert [c.name for c in failed] == ["MaxPool2d(2) ties"]
    case = failed[0]
    n, c, y, x = next(k for k in case.checks if k.what == "grad input").worst
    y0, x0 = y // 2 * 2, x // 2 * 2
    window = case.context["inputs"][0][n, c, y0 : y0 + 2, x0 : x0 + 2]
    assert int((window == window.max()).sum()) > 1  # the worst element sits at a tie
    split = "is split between them" in " ".join(
        h.message for h in report.hints if h.check == "ties"
    )
    assert split == (bug == "ties-split")


def test_softmax_without_max_subtraction_overflows():
    assert scratch.verify(LAYERS.make_softmax(None), "Softmax(dim=1)").passed
    report = scratch.verify(LAYERS.make_softmax("no-max"), "Softmax(dim=1)")
    assert {"overflow", "extreme"} <= checks(report)
    (case,) = [c for c in report.cases if c.failed]
    assert case.name.endswith("extreme")
    check = next(k for k in case.checks if k.what == "output" and k.dtype == "float64")
    assert not torch.isfinite(case.pairs["output"][0][check.worst])


def test_cross_entropy_pair_missing_mean():
    assert scratch.verify(LAYERS.make_cross_entropy_pair(None), "CrossEntropyLoss()").passed
    report = scratch.verify(LAYERS.make_cross_entropy_pair("no-mean"), "CrossEntropyLoss()")
    assert any(h.check == "factor" and "N=4" in h.message for h in report.hints), report.table()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((4, 5), generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.randint(5, (4,), generator=gen)
    loss = torch.nn.functional.cross_entropy(x, target)
    upstream = torch.randn((), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (gx,) = torch.autograd.grad(loss, [x], upstream)
    check = next(k for k in report.cases[0].checks if k.what == "grad input")
    assert check.worst == argmax(gx)


def test_mse_loss_with_backward_without_arguments():
    assert scratch.verify(LAYERS.make_mse(None), "MSELoss()").passed
    report = scratch.verify(LAYERS.make_mse("half"), "MSELoss()")
    assert any(h.check == "factor" and "1/2" in h.message for h in report.hints)


def test_relu_kink_and_mutation():
    assert scratch.verify(LAYERS.make_relu(None), "ReLU()").passed
    report = scratch.verify(LAYERS.make_relu("kink"), "ReLU()")
    assert "kinks" in checks(report)
    assert [c.name for c in report.cases if c.failed] == ["ReLU() kinks"]
    report = scratch.verify(LAYERS.make_relu("inplace"), "ReLU()")
    assert "mutation" in checks(report)
    assert any("modified input 0 in place" in k.message for k in report.cases[0].checks)


@pytest.mark.parametrize(
    "name, words",
    [
        ("ReturnsList", "is a list, expected an array"),
        ("Raises", "raised RuntimeError: not implemented yet"),
        ("WrongShape", "forward's output has shape (3, 6), torch's is (3, 7)"),
    ],
)
def test_misbehaving_layers_get_a_clear_verdict(name, words):
    report = scratch.verify(getattr(LAYERS, name), "ReLU()")
    assert not report.passed
    assert report.cases[0].verdict == "error"
    assert words in report.cases[0].reason
