"""The bridge from a user's forward/backward pair (NumPy or torch) into torch.autograd.

A `Call` knows how to run one user layer: a layer object (`forward(x) -> y`,
`backward(grad_y) -> grad_x`, parameters and their gradients on attributes) or a function pair
(`forward(x, weight, bias, **options) -> (y, cache)`, `backward(grad_y, cache) -> grads`).
`UserFunction` runs it inside autograd, converting tensors to the user's arrays and back and
checking what comes back (type, shape) so a wrong return is a clear `LayerError`.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from scratch.autograd import no_double_backward

WEIGHT_ALIASES = {"weight": ("weight", "W", "w"), "bias": ("bias", "b", "B")}
GRAD_ALIASES = {
    "weight": ("grad_weight", "dW", "dw", "d_weight", "weight_grad"),
    "bias": ("grad_bias", "db", "dB", "d_bias", "bias_grad"),
}


class LayerError(Exception):
    """The user's layer returned something that is not what its convention promises."""

    def __init__(self, message: str, what: str = "", shapes: tuple = ()):
        super().__init__(message)
        self.what, self.shapes = what, shapes  # shapes: (yours, expected) on a shape mismatch


def attribute(obj: Any, aliases: tuple[str, ...]) -> str | None:
    """The first of `aliases` that `obj` has as an attribute (None: none)."""
    return next((a for a in aliases if hasattr(obj, a)), None)


def to_user(t: torch.Tensor | None, array: str, copy: bool = False):
    """A tensor as the user's array: NumPy (sharing memory unless `copy`) or a detached tensor."""
    if t is None:
        return None
    t = t.detach()
    if copy:
        t = t.clone()
    return t.numpy() if array == "numpy" else t


def from_user(a: Any, what: str, like: torch.Tensor, shape: tuple | None = None) -> torch.Tensor:
    """The user's array (or Python number) back as a tensor of `like`'s dtype; checks its shape."""
    if isinstance(a, torch.Tensor):
        t = a.detach()
    elif isinstance(a, np.ndarray | np.generic | float | int):
        t = torch.from_numpy(np.array(a))
    else:
        raise LayerError(f"{what} is a {type(a).__name__}, expected an array")
    if not (t.is_floating_point() or t.dtype == torch.bool or t.numel() == 0):
        t = t.double()
    if t.is_floating_point() and like.is_floating_point() and t.itemsize < like.itemsize:
        raise LayerError(
            f"{what} is {str(t.dtype).removeprefix('torch.')} for a "
            f"{str(like.dtype).removeprefix('torch.')} input: computed in lower precision (a "
            "float32 array or constant somewhere?); torch keeps the input's dtype"
        )
    t = t.to(like.dtype)
    if shape is not None and tuple(t.shape) != tuple(shape):
        if t.numel() == 1 and len(shape) == 0:
            return t.reshape(())
        raise LayerError(
            f"{what} has shape {tuple(t.shape)}, expected {tuple(shape)}",
            what,
            (tuple(t.shape), tuple(shape)),
        )
    return t.clone() if t.data_ptr() == like.data_ptr() else t


def takes_argument(fn) -> bool:
    """Whether `fn` (bound) takes at least one argument (`backward(grad)` vs `backward()`)."""
    try:
        return len(inspect.signature(fn).parameters) > 0
    except (TypeError, ValueError):
        return True


def upstream(grad: torch.Tensor, array: str, loss: bool):
    """The upstream gradient as the user gets it: a float for a scalar loss."""
    if loss and grad.numel() == 1:
        return float(grad)
    return to_user(grad, array)


@dataclass
class Call:
    """One user layer: `kind` is "layer" (an object) or "pair" (forward and backward functions)."""

    kind: str
    user: Any  # the layer object, or a (forward, backward) tuple
    names: tuple[str, ...]  # the tensors UserFunction gets: "input0", "input1", then params
    options: dict[str, Any] = field(default_factory=dict)  # keyword options for a pair
    array: str = "auto"  # "numpy" | "torch" | "auto" (decided at the first forward)
    loss: bool = False
    params: dict[str, str | None] = field(default_factory=dict)  # torch name -> user attribute

    def forward(self, tensors: tuple[torch.Tensor | None, ...]):
        """Run the user's forward; returns the output tensor and what backward needs."""
        if self.array != "auto":
            return self._forward(tensors, self.array)
        try:
            result = self._forward(tensors, "numpy")
            self.array = "numpy"
        except LayerError:
            raise
        except Exception:  # noqa: BLE001 - not a NumPy layer: try tensors before giving up
            try:
                result = self._forward(tensors, "torch")
            except Exception:  # noqa: BLE001
                return self._forward(tensors, "numpy")  # raise the NumPy attempt's error
            self.array = "torch"
        return result

    def _forward(self, tensors, array: str):
        inputs = [to_user(t, array) for n, t in zip(self.names, tensors) if n.startswith("input")]
        values = {n: t for n, t in zip(self.names, tensors) if not n.startswith("input")}
        x = tensors[0]
        if self.kind == "pair":
            params = [to_user(values.get(n), array, copy=True) for n in self.params]
            out = self.user[0](*inputs, *params, **self.options)
            if not isinstance(out, tuple) or len(out) != 2:
                raise LayerError(
                    f"forward returned a {type(out).__name__}, expected a tuple (output, cache)"
                )
            y, state = out
        else:
            for name, attr in self.params.items():
                if attr is not None and values.get(name) is not None:
                    setattr(self.user, attr, to_user(values[name], array, copy=True))
            # a shallow copy keeps this forward's cache: gradcheck runs forwards before backward
            y = self.user.forward(*inputs)
            state = copy.copy(self.user)
        if isinstance(y, tuple):
            y = y[0]  # e.g. (y, indices): the output is compared, the rest is the user's
        return from_user(y, "forward's output", x), state

    def backward(self, grad: torch.Tensor, state, tensors) -> list[torch.Tensor | None]:
        """Run the user's backward; one gradient per tensor in `self.names` (None: not given)."""
        g = upstream(grad, self.array, self.loss)
        scale = 1.0
        if self.kind == "layer":  # a fresh copy per call: a backward may step its own weights
            state = copy.copy(state)
            for attr in filter(None, self.params.values()):
                value = getattr(state, attr, None)
                if value is not None and hasattr(value, "copy"):
                    setattr(state, attr, value.clone() if torch.is_tensor(value) else value.copy())
        if self.kind == "pair":
            out = self.user[1](g, state)
        elif takes_argument(state.backward):
            out = state.backward(g)
        else:  # a loss's backward(): d loss / d x, times the upstream scalar
            out, scale = state.backward(), float(grad)
        outs = list(out) if isinstance(out, tuple | list) else [out]
        grads: list[torch.Tensor | None] = [None] * len(self.names)
        grads[0] = self._grad(outs[0], "backward's grad_x", tensors[0], scale)
        param_names = [n for n in self.names if not n.startswith("input")]
        for i, name in enumerate(param_names):
            index = self.names.index(name)
            given = outs[1 + i] if len(outs) > 1 + i else self._attribute_grad(state, name)
            grads[index] = self._grad(given, f"grad of {name}", tensors[index], scale)
        return grads

    def _attribute_grad(self, layer, name: str):
        if self.kind != "layer":
            return None
        attr = attribute(layer, GRAD_ALIASES.get(name, (f"grad_{name}",)))
        if attr is not None:
            return getattr(layer, attr)
        param = getattr(layer, self.params.get(name) or name, None)
        return getattr(param, "grad", None) if isinstance(param, torch.Tensor) else None

    @staticmethod
    def _grad(a, what: str, like: torch.Tensor | None, scale: float):
        if a is None or like is None:
            return None
        t = from_user(a, what, like, tuple(like.shape))
        return t * scale if scale != 1.0 else t


class UserFunction(torch.autograd.Function):
    """`UserFunction.apply(call, *tensors)`: the user's forward and backward inside autograd."""

    @staticmethod
    def forward(ctx, call: Call, *tensors):
        with torch.enable_grad():  # a torch layer may use autograd inside its own backward
            y, state = call.forward(tensors)
        ctx.call, ctx.state = call, state
        ctx.tensors = tuple(t.detach() if t is not None else None for t in tensors)
        return y

    @staticmethod
    def backward(ctx, grad):
        if torch.is_grad_enabled():  # create_graph=True
            raise no_double_backward("the layer under test")
        with torch.enable_grad():
            grads = ctx.call.backward(grad, ctx.state, ctx.tensors)
        needs = ctx.needs_input_grad[1:]
        return (None, *(g if need else None for g, need in zip(grads, needs)))
