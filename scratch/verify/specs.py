"""What the adapters need to know about each torch.nn class a user's layer may be checked against.

For each class: its torch.nn.functional twin and that function's arguments in order (tensor
inputs, the module's parameters, then the options with their defaults), how many spatial dims
its inputs have (for `--layout nhwc`), whether it is a loss, and the constructor options a
function-shaped layer cannot express (`padding_mode`).
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any

import torch

NO_DEFAULT = inspect.Parameter.empty


@dataclass(frozen=True)
class Spec:
    """One torch.nn class as the adapters see it."""

    layer: str
    function: str  # the torch.nn.functional name
    params: tuple[str, ...] = ()  # module parameters, in the functional's order
    options: tuple[tuple[str, Any], ...] = ()  # functional options in order, with defaults
    inputs: int = 1  # tensor inputs before the parameters (2 for losses: input, target)
    spatial: int = 0  # spatial dims of the input (for the nhwc layout)
    loss: bool = False
    fixed: dict[str, Any] = field(default_factory=dict)  # ctor options a function can't express
    hidden: tuple[str, ...] = ()  # options never passed by keyword to a user's function pair
    dims: tuple[str, ...] = ("n", "c")  # letters of the output's dims, batched

    def option_values(self, ctor: dict[str, Any], training: bool) -> dict[str, Any]:
        """The functional's options from the torch constructor's (bound, defaulted) arguments."""
        values = {}
        for name, default in self.options:
            values[name] = training if name == "training" else ctor.get(name, default)
        return values

    def keyword_options(self, ctor: dict[str, Any], training: bool) -> dict[str, Any]:
        """The options a user's `forward(x, w, b, **options)` gets: required or non-default."""
        defaults = dict(self.options)
        return {
            name: value
            for name, value in self.option_values(ctor, training).items()
            if name not in self.hidden
            and (defaults[name] is NO_DEFAULT or not _same(value, defaults[name]))
        }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return a is b
    return a == b


_CONV = (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1))
_MAX = (
    ("kernel_size", NO_DEFAULT),
    ("stride", None),
    ("padding", 0),
    ("dilation", 1),
    ("ceil_mode", False),
    ("return_indices", False),
)
_AVG = (
    ("kernel_size", NO_DEFAULT),
    ("stride", None),
    ("padding", 0),
    ("ceil_mode", False),
    ("count_include_pad", True),
    ("divisor_override", None),
)
_REDUCE = (("size_average", None), ("reduce", None), ("reduction", "mean"))
_LEGACY = ("size_average", "reduce", "_stacklevel", "dtype")
_BN = (("training", False), ("momentum", 0.1), ("eps", 1e-5))


def _specs() -> dict[str, Spec]:
    specs = [
        Spec("Linear", "linear", ("weight", "bias"), dims=("n", "j")),
        Spec("Flatten", "flatten", (), (("start_dim", 1), ("end_dim", -1))),
        Spec("ReLU", "relu", (), (("inplace", False),)),
        Spec("LeakyReLU", "leaky_relu", (), (("negative_slope", 0.01), ("inplace", False))),
        Spec("Sigmoid", "sigmoid"),
        Spec("Tanh", "tanh"),
        Spec("GELU", "gelu", (), (("approximate", "none"),)),
        Spec(
            "Softmax",
            "softmax",
            (),
            (("dim", None), ("_stacklevel", 3), ("dtype", None)),
            hidden=_LEGACY,
        ),
        Spec(
            "LogSoftmax",
            "log_softmax",
            (),
            (("dim", None), ("_stacklevel", 3), ("dtype", None)),
            hidden=_LEGACY,
        ),
        Spec("Dropout", "dropout", (), (("p", 0.5), ("training", True), ("inplace", False))),
        Spec(
            "CrossEntropyLoss",
            "cross_entropy",
            (),
            (
                ("weight", None),
                ("size_average", None),
                ("ignore_index", -100),
                ("reduce", None),
                ("reduction", "mean"),
                ("label_smoothing", 0.0),
            ),
            inputs=2,
            loss=True,
            hidden=_LEGACY,
        ),
        Spec(
            "NLLLoss",
            "nll_loss",
            (),
            (
                ("weight", None),
                ("size_average", None),
                ("ignore_index", -100),
                ("reduce", None),
                ("reduction", "mean"),
            ),
            inputs=2,
            loss=True,
            hidden=_LEGACY,
        ),
        Spec("MSELoss", "mse_loss", (), _REDUCE, inputs=2, loss=True, hidden=_LEGACY),
        Spec(
            "BCELoss",
            "binary_cross_entropy",
            (),
            (("weight", None), *_REDUCE),
            inputs=2,
            loss=True,
            hidden=_LEGACY,
        ),
        Spec(
            "BCEWithLogitsLoss",
            "binary_cross_entropy_with_logits",
            (),
            (("weight", None), *_REDUCE, ("pos_weight", None)),
            inputs=2,
            loss=True,
            hidden=_LEGACY,
        ),
    ]
    letters = {1: ("x",), 2: ("y", "x"), 3: ("z", "y", "x")}
    for d in (1, 2, 3):
        dims = ("n", "c", *letters[d])
        specs += [
            Spec(
                f"Conv{d}d",
                f"conv{d}d",
                ("weight", "bias"),
                _CONV,
                spatial=d,
                fixed={"padding_mode": "zeros"},
                dims=dims,
            ),
            Spec(f"MaxPool{d}d", f"max_pool{d}d", (), _MAX, spatial=d, dims=dims),
            Spec(
                f"AvgPool{d}d",
                f"avg_pool{d}d",
                (),
                _AVG[:5] if d == 1 else _AVG,
                spatial=d,
                dims=dims,
            ),
            Spec(
                f"AdaptiveAvgPool{d}d",
                f"adaptive_avg_pool{d}d",
                (),
                (("output_size", NO_DEFAULT),),
                spatial=d,
                dims=dims,
            ),
            # a function-shaped BatchNorm gets (x, weight, bias, training, momentum, eps): the
            # running statistics are buffers, kept by layer objects on `running_mean`/`_var`
            Spec(f"BatchNorm{d}d", "batch_norm", ("weight", "bias"), _BN, spatial=d, dims=dims),
        ]
    return {s.layer: s for s in specs}


SPECS = _specs()


def spec_of(layer: str) -> Spec:
    """The spec of a torch.nn class name, or a ValueError listing the known ones."""
    if layer not in SPECS:
        close = difflib.get_close_matches(layer, SPECS, n=1) or [
            name for name in SPECS if name.lower() == layer.lower()
        ]
        guess = f"did you mean {close[0]}? " if close else ""
        raise ValueError(
            f"--like {layer!r}: no such layer; {guess}known: {', '.join(sorted(SPECS))}"
        )
    return SPECS[layer]


def constructor_arguments(layer: str, args: tuple, kwargs: dict) -> dict[str, Any]:
    """torch.nn.<layer>'s constructor arguments by name, defaults filled in."""
    signature = inspect.signature(getattr(torch.nn, layer).__init__)
    bound = signature.bind(None, *args, **kwargs)
    bound.apply_defaults()
    values = dict(bound.arguments)
    values.pop("self", None)
    values.update(values.pop("kwargs", {}) or {})
    return values


def explicit_arguments(layer: str, args: tuple, kwargs: dict) -> dict[str, Any]:
    """Only the constructor arguments the case gives, by name (what a factory `make` gets)."""
    signature = inspect.signature(getattr(torch.nn, layer).__init__)
    bound = signature.bind(None, *args, **kwargs)
    values = dict(bound.arguments)
    values.pop("self", None)
    values.update(values.pop("kwargs", {}) or {})
    return values
