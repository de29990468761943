"""Which configurations a user's layer is checked on: `--like` parsed, single configurations with
their edge inputs, Hypothesis strategies over torch's options, input kinds and case features.

`parse_like("Conv2d(3, 8, 3, stride=2, padding=1)")` reads the text with `ast` (literals only,
never eval).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect

import torch
from hypothesis import strategies as st

from scratch.verify.parity import Case, Input, classes, randn, uniform
from scratch.verify.specs import constructor_arguments, explicit_arguments, spec_of

KINDS = (
    "batched",
    "unbatched",
    "extra-leading-dims",
    "batch1",
    "empty-batch",
    "zero-size",
    "noncontiguous",
    "index-targets",
    "probability-targets",
    "float64",
    "float32",
)
# A layer that raises on one of these kinds gets it reported as unsupported, not failed.
OPTIONAL_KINDS = (
    "unbatched",
    "extra-leading-dims",
    "empty-batch",
    "zero-size",
    "noncontiguous",
    "probability-targets",
    "float32",
)


def parse_like(text: str) -> tuple[str, tuple | None, dict | None]:
    """`"Conv2d"` -> ("Conv2d", None, None); `"Conv2d(3, 8, 3, stride=2)"` -> its arguments."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
        if isinstance(node, ast.Attribute):  # torch.nn.Conv2d
            node = ast.Name(node.attr)
        if isinstance(node, ast.Name):
            return node.id, None, None
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id  # type: ignore[attr-defined]
            args = tuple(ast.literal_eval(a) for a in node.args)
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            return name, args, kwargs
    except (SyntaxError, ValueError, AttributeError):
        raise ValueError(
            f"--like {text!r}: expected a class name or a call with literal arguments only, "
            "e.g. Conv2d(3, 8, 3, stride=2)"
        ) from None
    raise ValueError(f"--like {text!r}: expected a class name like Conv2d or Conv2d(3, 8, 3)")


def _ints(v, n: int) -> tuple[int, ...]:
    return (v,) * n if isinstance(v, int) else tuple(v)


def _spatial_sizes(layer: str, ctor: dict, d: int) -> tuple[int, ...]:
    """Odd, non-square input sizes at which every window of the configuration fits."""
    kernel = _ints(ctor.get("kernel_size", 3) or 3, d)
    stride = (
        _ints(ctor.get("stride") or kernel, d)
        if "Pool" in layer
        else _ints(ctor.get("stride", 1), d)
    )
    dilation = _ints(ctor.get("dilation", 1), d)
    span = [dl * (k - 1) + 1 for k, dl in zip(kernel, dilation)]
    sizes = [max(s + st_, 5) | 1 for s, st_ in zip(span, stride)]
    return tuple(n + 2 * i for i, n in enumerate(sizes))  # e.g. 5 x 7: odd and non-square


def config_inputs(layer: str, ctor: dict) -> tuple[Input, ...]:
    """Batched inputs for one configuration of `layer` (the family's usual shapes)."""
    spec = spec_of(layer)
    if spec.spatial:
        c = ctor.get("in_channels") or ctor.get("num_features") or 3
        return (randn(2, c, *_spatial_sizes(layer, ctor, spec.spatial)),)
    if layer == "Linear":
        return (randn(4, ctor["in_features"]),)
    if layer in ("CrossEntropyLoss", "NLLLoss"):
        return randn(4, 5), classes(4, num_classes=5)
    if layer == "BCELoss":
        return uniform(4, 5, low=0.05, high=0.95), uniform(4, 5)
    if spec.loss:
        return randn(4, 5), randn(4, 5)
    return (randn(3, 7, scale=2.0),)


def _reshaped(inp: Input, fn) -> Input:
    def make(g, dt):
        return fn(inp.make(g, dt))

    return dataclasses.replace(inp, make=make)


def single_cases(layer: str, args: tuple, kwargs: dict) -> list[Case]:
    """One configuration: its batched case, then batch 1, unbatched and the family's edges."""
    ctor = constructor_arguments(layer, args, kwargs)
    inputs = config_inputs(layer, ctor)
    text = call_text(layer, args, kwargs)
    make = lambda suffix, ins, **kw: Case(f"{text}{suffix}", layer, ins, args, kwargs, **kw)  # noqa: E731
    cases = [
        make("", inputs),
        make(" batch1", tuple(_reshaped(i, lambda t: t[:1]) for i in inputs)),
    ]
    if not spec_of(layer).loss or layer in ("CrossEntropyLoss", "NLLLoss"):
        cases.append(make(" unbatched", tuple(_reshaped(i, lambda t: t[0]) for i in inputs)))
    if layer.startswith("MaxPool"):
        ties = _reshaped(inputs[0], lambda t: torch.round(t.clamp(-1, 1)))
        cases.append(make(" ties", (ties,), gradcheck=False))
        negative = _reshaped(inputs[0], lambda t: -(t.abs() + 1))
        cases.append(make(" all-negative", (negative,)))
    if layer in ("Softmax", "LogSoftmax", "CrossEntropyLoss"):
        extreme = _reshaped(inputs[0], lambda t: t.sign() * 1e4)
        cases.append(make(" extreme", (extreme, *inputs[1:]), gradcheck=False))
    if layer in ("ReLU", "LeakyReLU"):
        kinks = _reshaped(inputs[0], lambda t: torch.round(t))
        cases.append(make(" kinks", (kinks,), gradcheck=False))
    return cases


def call_text(layer: str, args: tuple, kwargs: dict) -> str:
    """`Conv2d(3, 8, 3, stride=2)`: a configuration as the user would write it."""
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{layer}({', '.join(parts)})"


def user_case(case: Case) -> Case:
    """The case as a user's layer is checked on it: only the first input's gradient."""
    inputs = (case.inputs[0], *(dataclasses.replace(i, grad=False) for i in case.inputs[1:]))
    return dataclasses.replace(case, inputs=inputs)


def case_kinds(case: Case, seed: int = 0) -> tuple[str, ...]:
    """The input kinds of a case, from a throwaway draw of its inputs."""
    gen = torch.Generator().manual_seed(seed)
    return kinds_of(case, [i.leaf(gen, torch.float64) for i in case.inputs])


def option_names(case: Case) -> list[str]:
    """`name=value` for every constructor option the case sets away from torch's default."""
    given = explicit_arguments(case.layer, case.args, case.kwargs)
    signature = inspect.signature(getattr(torch.nn, case.layer).__init__).parameters
    names = []
    for name, value in given.items():
        default = signature[name].default if name in signature else inspect.Parameter.empty
        if default is not inspect.Parameter.empty and not _equal(value, default):
            names.append(f"{name}={value!r}" if isinstance(value, str | bool) else name)
    return names


def _equal(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - tensors: never the default
        return False


def kinds_of(case: Case, leaves: list[torch.Tensor]) -> tuple[str, ...]:
    """The input kinds of a case (see KINDS), from its inputs' shapes."""
    spec = spec_of(case.layer)
    x = leaves[0]
    kinds = []
    if spec.spatial and not case.layer.startswith("BatchNorm"):  # BatchNorm has no unbatched
        kinds.append("unbatched" if x.ndim == spec.spatial + 1 else "batched")
    elif case.layer == "Linear" or (spec.loss and case.layer in ("CrossEntropyLoss", "NLLLoss")):
        kinds.append({1: "unbatched", 2: "batched"}.get(x.ndim, "extra-leading-dims"))
    else:
        kinds.append("batched")
    if "batched" in kinds and x.ndim and x.shape[0] == 1:
        kinds.append("batch1")
    if x.numel() == 0:  # no elements: an empty batch, or zero features (an edge as unusual)
        kinds.append("empty-batch" if "batched" in kinds and x.shape[0] == 0 else "zero-size")
    if any(i.view is not None for i in case.inputs):
        kinds.append("noncontiguous")
    if spec.loss and len(leaves) > 1 and case.layer == "CrossEntropyLoss":
        kinds.append("probability-targets" if leaves[1].is_floating_point() else "index-targets")
    return tuple(kinds)


def features_of(case: Case, leaves: list[torch.Tensor]) -> set[str]:
    """What is special about a case, for the hints that correlate failures with options."""
    ctor = constructor_arguments(case.layer, case.args, case.kwargs)
    spec, feats = spec_of(case.layer), set(kinds_of(case, leaves))
    d = spec.spatial
    if d:
        for option, neutral in (("stride", 1), ("padding", 0), ("dilation", 1)):
            value = ctor.get(option)
            if value is not None and not isinstance(value, str) and value != neutral:
                if any(v != neutral for v in _ints(value, d)):
                    feats.add(option)
        kernel = _ints(ctor.get("kernel_size") or 1, d)
        sizes = tuple(leaves[0].shape[-d:])
        if d >= 2 and (len(set(kernel)) > 1 or len(set(sizes)) > 1):
            feats.add("non-square")
        if ctor.get("groups", 1) != 1:
            feats.add("groups")
        if ctor.get("ceil_mode"):
            feats.add("ceil_mode")
    if ctor.get("bias") is False:
        feats.add("no-bias")
    for word in ("ties", "kinks"):
        if word in case.name:
            feats.add(word)
    if leaves[0].numel() and leaves[0].is_floating_point() and leaves[0].abs().max() >= 1e3:
        feats.add("extreme")
    return feats


@st.composite
def _conv2d(draw):
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    kwargs = {}
    for name, low, high in (("stride", 1, 3), ("padding", 0, 2), ("dilation", 1, 2)):
        value = (draw(st.integers(low, high)), draw(st.integers(low, high)))
        if value != (low, low):
            kwargs[name] = value[0] if value[0] == value[1] else value
    if draw(st.booleans()):
        kwargs["bias"] = False
    return (c_in, c_out, kernel if kernel[0] != kernel[1] else kernel[0]), kwargs


@st.composite
def _linear(draw):
    kwargs = {"bias": False} if draw(st.booleans()) else {}
    return (draw(st.integers(1, 6)), draw(st.integers(1, 6))), kwargs


@st.composite
def _pool(draw, layer: str):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    kwargs = {}
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if stride != kernel:
        kwargs["stride"] = stride
    pad = draw(st.integers(0, 1))
    if pad and 2 * pad <= min(kernel):
        kwargs["padding"] = pad
    if layer == "MaxPool2d" and draw(st.booleans()):
        kwargs["ceil_mode"] = True
    return (kernel if kernel[0] != kernel[1] else kernel[0],), kwargs


STRATEGIES = {
    "Conv2d": _conv2d(),
    "Linear": _linear(),
    "MaxPool2d": _pool("MaxPool2d"),
    "AvgPool2d": _pool("AvgPool2d"),
}


def property_case(layer: str, drawn: tuple[tuple, dict]) -> Case:
    """The batched case of one drawn configuration."""
    args, kwargs = drawn
    ctor = constructor_arguments(layer, args, kwargs)
    return Case(
        f"{call_text(layer, args, kwargs)}", layer, config_inputs(layer, ctor), args, kwargs
    )
