"""The hint engine: from the pattern of the errors to the most likely bug, in words.

Per case, on the float64 tensors of both sides (`case.pairs`): a missing or all-zero gradient,
the wrong sign, a constant factor (the batch size N: a missing or extra mean; 255; 2; the
maximum: normalised), a transpose or height/width swap, the bias ignored or applied twice, only
border positions wrong (padding), a wrong output size, NaN/inf where torch is finite (no max
subtraction), max-pool gradients split between or sent to the wrong one of tied maxima. Across
cases: failures that come only with one option or input kind (stride, padding, non-square, ...).
Each hint names the cases that support it.
"""

from __future__ import annotations

import torch

from scratch.verify.report import CaseResult, Hint

Pair = tuple[torch.Tensor | None, torch.Tensor | None]


def _close(a: torch.Tensor, e: torch.Tensor) -> bool:
    """Equal up to rounding, NaN where torch's is NaN (the scale from the finite values)."""
    finite = e[e.isfinite()]
    scale = float(finite.abs().max()) if finite.numel() else 0.0
    return a.shape == e.shape and bool(
        torch.allclose(a, e, rtol=1e-6, atol=1e-9 * (1 + scale), equal_nan=True)
    )


def _named_factor(k: float, n: int) -> str | None:
    for value, text in (
        (n, f"the batch size N={n}: a missing mean over the batch (or a sum where torch averages)"),
        (1 / n, f"1/N (N={n}): an extra mean over the batch"),
        (255.0, "255: inputs scaled to [0, 1] somewhere"),
        (1 / 255, "1/255"),
        (2.0, "2: a term counted twice"),
        (0.5, "1/2: a missing factor 2"),
    ):
        if n > 1 or value not in (n, 1 / n):
            if abs(k - value) <= 1e-6 * abs(value):
                return text
    return None


def value_hints(what: str, pair: Pair, case: CaseResult) -> list[tuple[str, str]]:
    """Patterns of one failing tensor: (check, message) pairs."""
    a, e = pair
    if e is None:
        return []
    if a is None:
        return [("missing", f"{what}: your layer gives no gradient at all (None)")]
    a, e = a.double(), e.double()
    if a.shape != e.shape:
        return _shape_hints(what, a.shape, e.shape, case.layer)
    if (~a.isfinite() & e.isfinite()).any():
        why = (
            "exp overflows on large inputs; subtract the max before exp (log-sum-exp)"
            if case.layer in EXP_LAYERS
            else "an overflow or a division by zero"
        )
        return [("overflow", f"{what}: NaN/inf where torch's values are finite: {why}")]
    if not e.any() or _close(a, e):
        return []
    if not a.any():
        return [("zero", f"{what} is all zeros: the gradient is never computed or stored")]
    if _close(a, -e):
        return [("sign", f"{what} has the wrong sign (yours = -torch's)")]
    found = _factor(what, a, e, case) + _transposed(what, a, e, case)
    found += _bias(what, a, e, case) + _border(what, a, e, case) + _ties(what, a, e, case)
    return found + _at_nonfinite_inputs(what, a, e, case)


def _at_nonfinite_inputs(what, a, e, case: CaseResult) -> list[tuple[str, str]]:
    """Wrong only where the (elementwise) layer's input is NaN or inf: NaN semantics."""
    inputs = case.context.get("inputs") or []
    if what not in ("output", "grad input") or not inputs or inputs[0].shape != e.shape:
        return []
    wrong = ~torch.isclose(a, e, rtol=1e-6, atol=1e-9, equal_nan=True)
    if not wrong.any() or (wrong & inputs[0].isfinite()).any():
        return []
    relu = case.layer == "ReLU" and what == "grad input"
    why = (
        ": torch's mask is `not (x <= 0)`, so at NaN the gradient passes through, where "
        "`x > 0` stops it"
        if relu
        else ""
    )
    return [
        (
            "nonfinite",
            f"{what} differs from torch's only where the input is NaN or inf{why}; "
            "everywhere else yours is right",
        )
    ]


def _factor(what, a, e, case: CaseResult) -> list[tuple[str, str]]:
    k = float((a * e).sum() / (e * e).sum())
    if k == 0 or not _close(a, k * e):
        return []
    n = case.shapes[0][0] if case.shapes and len(case.shapes[0]) > 1 else 1
    named = _named_factor(k, n)
    if abs(float(a.abs().max()) - 1) < 1e-9 or abs(k * float(e.abs().max()) - 1) < 1e-6:
        return [
            (
                "normalised",
                f"{what} is torch's divided by its maximum: correct up to "
                "normalisation (drop the division by the max)",
            )
        ]
    text = named or f"{k:.6g}"
    return [("factor", f"{what} is torch's times a constant factor {text}")]


def _transposed(what, a, e, case: CaseResult) -> list[tuple[str, str]]:
    if e.ndim >= 2 and e.shape[-1] == e.shape[-2] and _close(a.mT, e):
        spatial = case.layer[-2:] == "2d" and what in ("output", "grad input")
        if spatial:
            return [
                (
                    "hw-swap",
                    f"{what}: height and width swapped (yours is torch's transposed over y and x)",
                )
            ]
        return [("transposed", f"{what} is torch's transposed")]
    return []


def _bias(what, a, e, case: CaseResult) -> list[tuple[str, str]]:
    reference = case.context.get("reference")
    bias = getattr(reference, "bias", None)
    if what != "output" or bias is None or e.ndim < 2:
        return []
    cdim = -1 if case.layer == "Linear" else (0 if "unbatched" in case.kinds else 1)
    if e.shape[cdim] != bias.numel():  # not the channel dim: no bias pattern to look for
        return []
    shape = [1] * e.ndim
    shape[cdim] = -1
    b = bias.detach().double().reshape(shape).expand_as(e)
    if _close(a - e, b):
        return [("bias", "output: the bias is added twice")]
    if _close(a - e, -b):
        return [("bias", "output: the bias is ignored (never added)")]
    return []


def _border(what, a, e, case: CaseResult) -> list[tuple[str, str]]:
    d = {"1d": 1, "2d": 2, "3d": 3}.get(case.layer[-2:], 0)
    if not d or what not in ("output", "grad input") or min(e.shape[-d:]) < 3:
        return []
    wrong = ~torch.isclose(a, e, rtol=1e-6, atol=1e-9)
    inner = torch.zeros_like(wrong)
    inner[(...,) + (slice(1, -1),) * d] = True
    if wrong.any() and not (wrong & inner).any():
        where = "the output" if what == "output" else "the input gradient"
        return [
            (
                "padding",
                f"{what}: only border positions of {where} are wrong: padding "
                "(its size, where it goes, or cutting it off in backward)",
            )
        ]
    return []


def _ties(what, a, e, case: CaseResult) -> list[tuple[str, str]]:
    if not case.layer.startswith("MaxPool") or what != "grad input" or "ties" not in case.features:
        return []
    if not torch.isclose(a.sum(), e.sum()):
        return []
    if int((a != 0).sum()) > int((e != 0).sum()):
        return [
            (
                "ties",
                "grad input: at tied maxima your gradient is split between them; torch "
                "sends all of it to one (the first in the window)",
            )
        ]
    return [
        (
            "ties",
            "grad input: at tied maxima your gradient goes to another maximum than "
            "torch's (the first in the window)",
        )
    ]


EXP_LAYERS = {"Softmax", "LogSoftmax", "CrossEntropyLoss", "Sigmoid", "Tanh", "GELU"}
EXP_LAYERS |= {"BCEWithLogitsLoss", "BCELoss", "NLLLoss"}


def _shape_hints(what: str, a: tuple, e: tuple, layer: str) -> list[tuple[str, str]]:
    a, e = tuple(a), tuple(e)
    if len(a) == len(e) >= 2 and a != e and a == (*e[:-2], e[-1], e[-2]):
        return [
            (
                "transposed",
                f"{what} has torch's shape transposed {a}: height and width "
                "(or in and out) swapped",
            )
        ]
    windows = "Conv" in layer or "Pool" in layer
    rule = (
        ": check the output-size formula floor((H + 2p - d(k-1) - 1) / s) + 1 and the stride"
        if windows
        else ""
    )
    return [("size", f"{what}: shape {a}, torch's {e}{rule}")]


def _summary(case: CaseResult) -> list[tuple[str, str]]:
    by_what = {(c.what, c.dtype): c.passed for c in case.checks}
    forward = by_what.get(("output", "float64"), True)
    grads = all(ok for (w, d), ok in by_what.items() if w.startswith("grad") and d == "float64")
    gradcheck = by_what.get(("gradcheck", "float64"))
    found = [("mutation", c.message) for c in case.checks if c.what == "mutation"]
    if forward and not grads and gradcheck is not True:
        found.append(("backward", "your forward is right but your backward is wrong"))
        for option in ("stride", "dilation"):
            if option in case.features and not by_what.get(("grad input", "float64"), True):
                found.append(
                    (
                        option,
                        f"with {option} != default your forward is right but the "
                        f"input gradient is wrong: {FEATURE_WORDS[option]}",
                    )
                )
    if not forward and gradcheck is True:
        found.append(
            ("forward", "your backward is consistent with your forward, but the forward is wrong")
        )
    return found


FEATURE_WORDS: dict[str, str] = {
    "stride": "stride > 1: the stride is ignored or misapplied (check the backward, too)",
    "padding": "padding > 0: padding is wrong (its size, or removing it in backward)",
    "dilation": "dilation > 1: the dilation is ignored or misapplied",
    "non-square": "non-square kernels or inputs: height and width swapped somewhere",
    "groups": "groups > 1",
    "no-bias": "bias=False: the layer assumes a bias",
    "ties": "ties in max-pool windows: the gradient is split between or sent to the wrong "
    "maximum (torch: all of it to the first)",
    "extreme": "large inputs: no max subtraction (exp overflows)",
    "batch1": "batch size 1",
    "kinks": "inputs exactly at a kink (torch: relu'(0) = 0)",
    "unbatched": "unbatched inputs",
    "ceil_mode": "ceil_mode=True: the output-size formula rounds the wrong way",
}


def _only_with(results: list[CaseResult]) -> list[Hint]:
    """Features that every failing case has and some passing case lacks."""
    failed = [r for r in results if r.failed]
    passed = [r for r in results if r.verdict == "pass"]
    if not failed or not passed:
        return []
    hints = []
    for feature, words in FEATURE_WORDS.items():
        if all(feature in r.features for r in failed) and any(
            feature not in r.features for r in passed
        ):
            hints.append(Hint(feature, f"fails only with {words}", [r.name for r in failed]))
    return hints


def find_hints(results: list[CaseResult]) -> list[Hint]:
    """Every hint the failing cases support, most specific first."""
    found: dict[tuple[str, str], list[str]] = {}
    for case in results:
        if not case.failed:
            continue
        pairs: list[tuple[str, str]] = []
        for what, pair in case.pairs.items():
            if any(c.what == what and not c.passed for c in case.checks):
                pairs += value_hints(what, pair, case)
        shape_error = case.context.get("shape_error")
        if shape_error:
            what, yours, theirs = shape_error
            pairs += _shape_hints(what, yours, theirs, case.layer)
        for check, message in pairs + _summary(case):
            found.setdefault((check, message), []).append(case.name)
    failing = [set(r.features) for r in results if r.failed]
    for option in ("stride", "dilation"):  # said per case: only if failures come with it only
        if not all(option in features for features in failing):
            found = {key: cases for key, cases in found.items() if key[0] != option}
    hints = [Hint(check, message, cases) for (check, message), cases in found.items()]
    return hints + _only_with(results)
