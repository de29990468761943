"""Loss kernels of both backends against torch.nn.functional: outputs, grads of (out * g).sum().

Cases are data: each row builds float64 / int64 inputs in the kernel's argument order from a
seeded generator; float inputs are cast to the tested dtype. x, and a float target, are
differentiable; weight and pos_weight are not (the kernels return None for them).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F

from .conftest import BACKENDS, DTYPES, TOLERANCES, run_pair

F64 = torch.float64
IGNORE = -100
REDUCTIONS = ("none", "mean", "sum")


@dataclass(frozen=True)
class Case:
    id: str
    op: str
    make: Callable[[torch.Generator], tuple]  # kernel's array inputs, float64 / int64 / None
    options: dict = field(default_factory=dict)


def _reference_mse(x, target, weight, *, reduction):
    with warnings.catch_warnings():  # torch warns when it broadcasts x and target
        warnings.simplefilter("ignore", UserWarning)
        return F.mse_loss(x, target, reduction=reduction, weight=weight)


REFERENCE = {
    "cross_entropy": lambda x, t, w, **o: F.cross_entropy(x, t, w, **o),
    "nll_loss": lambda x, t, w, **o: F.nll_loss(x, t, w, **o),
    "mse_loss": _reference_mse,
    "binary_cross_entropy": lambda x, t, w, **o: F.binary_cross_entropy(x, t, w, **o),
    "binary_cross_entropy_with_logits": lambda x, t, w, pw, **o: F.binary_cross_entropy_with_logits(
        x, t, w, pos_weight=pw, **o
    ),
}


def _randn(gen, shape, scale=1.0):
    return torch.randn(shape, generator=gen, dtype=F64) * scale


def _rand(gen, shape):
    return torch.rand(shape, generator=gen, dtype=F64)


def class_inputs(
    shape,
    *,
    weight=False,
    ignore=0,
    ignore_value=IGNORE,
    probs=False,
    scale=1.0,
    log_probs=False,
    masked=False,
):
    """x (shape), a target with every `ignore`-th entry = ignore_value (0: none), weight (C,).

    weight="zeros": the 'mean' denominator is 0 with no target ignored (torch: nan, nan grads).

    masked: x = -inf at one non-target class per sample (masked logits: probability 0), at
    class 0 for ignored samples (whose placeholder class must not leak into the loss).
    """
    cdim = 0 if len(shape) == 1 else 1
    n_classes, t_shape = shape[cdim], shape[:cdim] + shape[cdim + 1 :]

    def make(gen):
        x = _randn(gen, shape, scale)
        x = torch.log_softmax(x, cdim) if log_probs else x
        if probs:
            target = torch.softmax(_randn(gen, shape), cdim)
        else:
            target = torch.randint(n_classes, t_shape, generator=gen)
            if ignore:
                target.view(-1)[::ignore] = ignore_value
            if masked:
                off = torch.where(target == ignore_value, 0, (target + 1) % n_classes)
                x = x.scatter(cdim, off.unsqueeze(cdim), -torch.inf)
        w = _rand(gen, n_classes) + 0.5 if weight else None
        w = torch.zeros(n_classes, dtype=F64) if weight == "zeros" else w
        return x, target, w

    return make


def bce_inputs(shape, *, weight=None, pos_weight=None, logits=False, scale=1.0, exact=False):
    """x (probabilities, or logits), a probability target, weight / pos_weight of given shapes."""

    def make(gen):
        x = _randn(gen, shape, scale) if logits else torch.sigmoid(_randn(gen, shape))
        target = _rand(gen, shape)
        if exact:  # x exactly 0 and 1 (torch's -100 log clamp), against targets 0, 1 and between
            x.view(-1)[:6] = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
            target.view(-1)[:4] = torch.tensor([0.0, 1.0, 1.0, 0.0])
        w = None if weight is None else _rand(gen, weight) + 0.5
        pw = None if pos_weight is None else _rand(gen, pos_weight) * 3
        return (x, target, w, pw) if logits else (x, target, w)

    return make


def mse_inputs(x_shape, target_shape, weight=False):
    """x, target and (with weight) a positive weight of x's shape, torch's rule."""
    return lambda gen: (
        _randn(gen, x_shape),
        _randn(gen, target_shape),
        _rand(gen, x_shape) + 0.5 if weight else None,
    )


def _ce(id, make, reduction, smoothing=0.0, ignore_index=IGNORE):
    options = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
    return Case(id, "cross_entropy", make, options)


def _tag(weight=False, ignore=False, smoothing=0.0):
    return (
        ("-w" if weight else "")
        + ("-ignore" if ignore else "")
        + (f"-ls{smoothing}" if smoothing else "")
    )


CASES = [
    *(
        _ce(
            f"crossentropy-{r}{_tag(w, ig, ls)}",
            class_inputs((6, 4), weight=w, ignore=3 * ig),
            r,
            ls,
        )
        for r in REDUCTIONS
        for w in (False, True)
        for ig in (False, True)
        for ls in (0.0, 0.1)
    ),
    *(
        _ce(
            f"crossentropy-4d-{r}-w-ignore-ls0.2",
            class_inputs((2, 3, 4, 5), weight=True, ignore=4),
            r,
            0.2,
        )
        for r in REDUCTIONS
    ),
    *(
        _ce(f"crossentropy-unbatched-{r}-w-ls0.1", class_inputs((5,), weight=True), r, 0.1)
        for r in REDUCTIONS
    ),
    _ce("crossentropy-unbatched-ignored-mean", class_inputs((5,), ignore=1), "mean", 0.1),
    _ce(
        "crossentropy-ignore-index-in-range",
        class_inputs((8, 4), weight=True, ignore=3, ignore_value=1),
        "mean",
        0.1,
        ignore_index=1,
    ),
    *(
        _ce(
            f"crossentropy-extreme-1e4-{r}{_tag(w, True, ls)}",
            class_inputs((6, 5), weight=w, ignore=4, scale=1e4),
            r,
            ls,
        )
        for r in ("none", "mean")
        for w in (False, True)
        for ls in (0.0, 0.1)
    ),
    *(
        _ce(
            f"crossentropy-all-ignored-{r}{_tag(w, True, ls)}",
            class_inputs((4, 3), weight=w, ignore=1),
            r,
            ls,
        )
        for r in REDUCTIONS
        for w in (False, True)
        for ls in (0.0, 0.1)
    ),
    *(
        _ce(f"crossentropy-empty-{r}-ls0.1", class_inputs((0, 3), weight=True), r, 0.1)
        for r in REDUCTIONS
    ),
    *(
        _ce(f"crossentropy-zero-weights-{r}", class_inputs((4, 3), weight="zeros"), r)
        for r in REDUCTIONS
    ),
    *(
        _ce(f"crossentropy-probs-empty-{r}", class_inputs((0, 3), probs=True), r)
        for r in REDUCTIONS
    ),
    *(
        _ce(
            f"crossentropy-masked-logits-{r}-w-ignore",
            class_inputs((5, 4), weight=True, ignore=2, masked=True),
            r,
        )
        for r in REDUCTIONS
    ),
    *(
        _ce(
            f"crossentropy-probs-{r}{_tag(w, False, ls)}",
            class_inputs((6, 4), weight=w, probs=True),
            r,
            ls,
        )
        for r in REDUCTIONS
        for w in (False, True)
        for ls in (0.0, 0.1)
    ),
    *(
        _ce(
            f"crossentropy-probs-4d-{r}-w-ls0.1",
            class_inputs((2, 3, 2, 4), weight=True, probs=True),
            r,
            0.1,
        )
        for r in REDUCTIONS
    ),
    _ce(
        "crossentropy-probs-unbatched-mean-ls0.1",
        class_inputs((5,), probs=True, weight=True),
        "mean",
        0.1,
    ),
    _ce("crossentropy-probs-extreme-1e4-mean", class_inputs((4, 5), probs=True, scale=1e4), "mean"),
    *(
        Case(
            f"nll-{r}{_tag(w, ig)}",
            "nll_loss",
            class_inputs((6, 4), weight=w, ignore=3 * ig, log_probs=True),
            dict(ignore_index=IGNORE, reduction=r),
        )
        for r in REDUCTIONS
        for w in (False, True)
        for ig in (False, True)
    ),
    *(
        Case(f"nll-{name}-{r}", "nll_loss", make, dict(ignore_index=IGNORE, reduction=r))
        for name, make in [
            ("4d-w-ignore", class_inputs((2, 3, 4, 5), weight=True, ignore=4, log_probs=True)),
            ("unbatched-w", class_inputs((5,), weight=True, log_probs=True)),
            ("all-ignored-w", class_inputs((4, 3), weight=True, ignore=1)),
            ("empty", class_inputs((0, 3))),
            ("zero-weights", class_inputs((4, 3), weight="zeros")),
            (
                "masked-log-probs-w-ignore",
                class_inputs((5, 4), weight=True, ignore=2, masked=True, log_probs=True),
            ),
        ]
        for r in REDUCTIONS
    ),
    Case(
        "nll-ignore-index-in-range",
        "nll_loss",
        class_inputs((8, 4), ignore=3, ignore_value=2),
        dict(ignore_index=2, reduction="mean"),
    ),
    *(
        Case(f"mse-{name}-{r}", "mse_loss", mse_inputs(*shapes), dict(reduction=r))
        for name, *shapes in [
            ("2d", (5, 4), (5, 4)),
            ("4d", (2, 3, 4, 5), (2, 3, 4, 5)),
            ("broadcast-target", (3, 4), (1, 4)),
            ("broadcast-both", (3, 1, 4), (2, 1)),
            ("0d", (), ()),
            ("empty", (0, 4), (0, 4)),
            ("w", (5, 4), (5, 4), True),
            ("w-broadcast-both", (3, 1, 4), (2, 1), True),
            ("w-empty", (0, 4), (0, 4), True),
        ]
        for r in REDUCTIONS
    ),
    *(
        Case(f"bce-{name}-{r}", "binary_cross_entropy", make, dict(reduction=r))
        for name, make in [
            ("2d", bce_inputs((5, 4))),
            ("w", bce_inputs((5, 4), weight=(5, 4))),
            ("w-broadcast", bce_inputs((2, 3, 4), weight=(4,))),
            ("exact-0-1-w", bce_inputs((3, 4), weight=(3, 4), exact=True)),
            ("empty", bce_inputs((0, 4))),
        ]
        for r in REDUCTIONS
    ),
    *(
        Case(f"bcelogits-{name}-{r}", "binary_cross_entropy_with_logits", make, dict(reduction=r))
        for name, make in [
            ("2d", bce_inputs((5, 4), logits=True)),
            ("w", bce_inputs((5, 4), weight=(5, 4), logits=True)),
            ("pos-weight", bce_inputs((5, 4), pos_weight=(4,), logits=True)),
            (
                "w-pos-weight-4d",
                bce_inputs((2, 3, 2, 2), weight=(2,), pos_weight=(3, 1, 1), logits=True),
            ),
            ("extreme-1e4-pos-weight", bce_inputs((5, 4), pos_weight=(4,), logits=True, scale=1e4)),
            ("extreme-1e4", bce_inputs((5, 4), logits=True, scale=1e4)),
            ("empty", bce_inputs((0, 4), weight=(4,), pos_weight=(4,), logits=True)),
        ]
        for r in REDUCTIONS
    ),
]


def _inputs(case: Case, gen, dtype):
    return tuple(
        a.to(dtype) if a is not None and a.is_floating_point() else a for a in case.make(gen)
    )


def _needs(arrays) -> tuple[bool, ...]:
    """x and a float target are differentiable; weight and pos_weight are not."""
    return tuple(i < 2 and a is not None and a.is_floating_point() for i, a in enumerate(arrays))


def _reference(case: Case, arrays, needs, gen):
    """torch's output, a random g like it, and the grads of (out * g).sum() where needed."""
    leaves = [a.clone().requires_grad_(n) if n else a for a, n in zip(arrays, needs)]
    out = REFERENCE[case.op](*leaves, **case.options)
    g = torch.randn(out.shape, generator=gen, dtype=F64).to(out.dtype)
    (out * g).sum().backward()
    return out.detach(), g, [leaf.grad if n else None for leaf, n in zip(leaves, needs)]


def _kernels(backend: str, case: Case, arrays, g, needs):
    """Call the forward / backward pair directly, as the bridge would."""
    (out,), grads = run_pair(backend, case.op, arrays, g, needs, **case.options)
    return out, list(grads)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matches_torch(case, dtype, backend, gen):
    arrays = _inputs(case, gen, dtype)
    needs = _needs(arrays)
    expected, g, expected_grads = _reference(case, arrays, needs, gen)
    out, grads = _kernels(backend, case, arrays, g, needs)
    tol = TOLERANCES[dtype]
    torch.testing.assert_close(out, expected, equal_nan=True, **tol)
    assert len(grads) == len(arrays)
    for i, (grad, want) in enumerate(zip(grads, expected_grads)):
        if want is None:
            assert grad is None, f"grad {i} was not needed"
        else:
            torch.testing.assert_close(grad, want, equal_nan=True, **tol, msg=f"grad {i}")


FLOAT_TARGETS = (
    "crossentropy-probs-mean-w-ls0.1",
    "mse-broadcast-both-sum",
    "bce-w-mean",
    "bcelogits-pos-weight-none",
)
FLOAT_TARGET_CASES = [c for c in CASES if c.id in FLOAT_TARGETS]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("only", [0, 1], ids=["x-only", "target-only"])
@pytest.mark.parametrize("case", FLOAT_TARGET_CASES, ids=[c.id for c in FLOAT_TARGET_CASES])
def test_skips_unneeded_grads(case, only, backend, gen):
    arrays = _inputs(case, gen, F64)
    needs = tuple(i == only for i in range(len(arrays)))
    _, g, want = _reference(case, arrays, needs, gen)
    _, grads = _kernels(backend, case, arrays, g, needs)
    assert [gr is None for gr in grads] == [not n for n in needs]
    torch.testing.assert_close(grads[only], want[only], **TOLERANCES[F64])
