"""Adapters: a user's layer, in any of the common conventions, as a torch.nn-shaped module.

`adapt(obj, like)` returns a candidate for `scratch.verify.parity`: called with torch.nn's
constructor arguments it builds an `Adapted` module whose parameters and buffers carry torch's
names (so the harness copies the torch twin's state into it) and whose forward runs the user's
layer. Conventions (see `convention_of`):

- "function": a `torch.autograd.Function` subclass, `Fn.apply(x, weight, bias, *options)`;
- "module": an `nn.Module` class built with torch's arguments (parameters matched by alias);
- "layer": a class with `forward(x) -> y` and `backward(grad_y) -> grad_x`, NumPy or torch;
- "pair": `forward(x, weight, bias, **options) -> (y, cache)`, `backward(grad_y, cache)`;
- "factory": `make(**torch_kwargs)` returning any of the above.

A constructor or factory raising NotImplementedError, TypeError or ValueError marks the
configuration `Unsupported`; an object that fits no convention is an `AdaptError`.
"""

from __future__ import annotations

import inspect
import types
from dataclasses import dataclass
from typing import Any

import torch
from torch.func import functional_call

from scratch.verify.bridge import WEIGHT_ALIASES, Call, UserFunction, attribute
from scratch.verify.specs import Spec, constructor_arguments, explicit_arguments, spec_of

LAYOUTS = ("nchw", "nhwc")
WEIGHT_LAYOUTS = ("torch", "in-out", "hwio")
REFUSALS = (NotImplementedError, TypeError, ValueError)


class AdaptError(Exception):
    """The object fits none of the conventions (the CLI exits 2)."""


class Unsupported(Exception):
    """The user's layer declines this configuration or input kind: reported, not failed."""


@dataclass(frozen=True)
class Options:
    """How the user's layer stores its tensors, and which arrays it takes."""

    layout: str = "nchw"  # "nhwc": channels last
    weight_layout: str = "torch"  # "in-out": a Linear weight (in, out); "hwio": (kH, kW, in, out)
    array: str = "auto"  # "numpy" | "torch" | "auto"


def _is_pair(obj: Any) -> bool:
    if isinstance(obj, tuple | list):
        return len(obj) == 2 and all(callable(f) for f in obj)
    if isinstance(obj, type):
        return all(
            isinstance(inspect.getattr_static(obj, m, None), staticmethod)
            for m in ("forward", "backward")
        )
    return isinstance(obj, types.ModuleType | types.SimpleNamespace) and all(
        callable(getattr(obj, m, None)) for m in ("forward", "backward")
    )


def convention_of(obj: Any) -> str:
    """The convention `obj` follows (classes and pairs; see the module docstring)."""
    if isinstance(obj, type) and issubclass(obj, torch.autograd.Function):
        return "function"
    if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
        return "module"
    if _is_pair(obj):
        return "pair"
    if isinstance(obj, type):
        missing = [m for m in ("forward", "backward") if not callable(getattr(obj, m, None))]
        if missing:
            raise AdaptError(
                f"class {obj.__name__} was tried as a layer class (forward(x) and "
                f"backward(grad_y) methods) but has no {' or '.join(missing)}"
            )
        return "layer"
    if callable(obj):
        return "factory"
    raise AdaptError(
        f"{type(obj).__name__} object fits no convention: expected an autograd.Function or "
        "nn.Module class, a layer class with forward/backward, a (forward, backward) pair or a "
        "factory make(**torch_kwargs)"
    )


def _made_convention(made: Any) -> str:
    """The convention of what a factory returned: also instances of layers and modules."""
    if isinstance(made, torch.nn.Module):
        return "module"
    if isinstance(made, type) or _is_pair(made):
        kind = convention_of(made)
        if kind != "factory":
            return kind
    if all(callable(getattr(made, m, None)) for m in ("forward", "backward")):
        return "layer"
    raise AdaptError(
        f"the factory returned a {type(made).__name__}, which has no forward and backward"
    )


def refused(fn, *args, **kwargs):
    """`fn(*args, **kwargs)`, with NotImplementedError/TypeError/ValueError as `Unsupported`;
    a TypeError only where `fn`'s signature does not take the arguments (a TypeError from
    inside it, such as len(None) for bias=False, is a bug: it propagates)."""
    try:
        return fn(*args, **kwargs)
    except TypeError as e:
        if _binds(fn, args, kwargs):
            raise
        raise Unsupported(f"{type(e).__name__}: {e}") from e
    except REFUSALS as e:
        raise Unsupported(f"{type(e).__name__}: {e}") from e


def _binds(fn, args: tuple, kwargs: dict) -> bool:
    """Whether `fn`'s signature takes these arguments (False where it has none to read)."""
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return False
    return True


def adapt(obj: Any, like: str, options: Options = Options()):
    """A candidate for `like` (a torch.nn class name) built from the user's `obj`."""
    spec = spec_of(like)
    kind = convention_of(obj)
    if options.layout not in LAYOUTS or options.weight_layout not in WEIGHT_LAYOUTS:
        raise AdaptError(f"layout must be one of {LAYOUTS}, weight layout one of {WEIGHT_LAYOUTS}")
    wanted = {"in-out": "Linear", "hwio": "Conv2d"}.get(options.weight_layout)
    if wanted and like != wanted:
        raise AdaptError(f"--weight-layout {options.weight_layout} is for {wanted}, not {like}")

    def candidate(*args, **kwargs) -> Adapted:
        reference = getattr(torch.nn, like)(*args, **kwargs)
        user, made = obj, kind
        if kind == "factory":
            user = refused(obj, **explicit_arguments(like, args, kwargs))
            made = _made_convention(user)
        if made in ("module", "layer") and isinstance(user, type):
            user = refused(user, *args, **kwargs)
        ctor = constructor_arguments(like, args, kwargs)
        return Adapted(reference, user, made, spec, ctor, options)

    candidate.convention = kind  # type: ignore[attr-defined]
    candidate.obj = obj  # type: ignore[attr-defined]
    return candidate


class Adapted(torch.nn.Module):
    """The user's layer behind torch's parameter names, layouts converted, in autograd."""

    def __init__(self, reference, user, kind: str, spec: Spec, ctor: dict, options: Options):
        super().__init__()
        for name, p in reference.named_parameters(recurse=False):
            self.register_parameter(name, torch.nn.Parameter(p.detach().clone()))
        for name in spec.params:
            if name not in self._parameters:
                self.register_parameter(name, None)
        for name, b in reference.named_buffers(recurse=False):
            self.register_buffer(name, b.clone())
        # not a submodule: the state_dict holds torch's names only
        self.__dict__["user"] = user
        self.kind, self.spec, self.options = kind, spec, options
        self.ctor = ctor
        for option, value in spec.fixed.items():
            if kind in ("function", "pair") and ctor.get(option, value) != value:
                raise Unsupported(f"{option}={ctor[option]!r}: a function takes no {option}")
        self.names = {name: self._user_name(name) for name in spec.params}
        self._check_weight_layout(reference)
        self.call = self._call() if kind in ("layer", "pair") else None

    def _check_weight_layout(self, reference) -> None:
        """A weight kept as (in, out) or (kH, kW, in, out), where --weight-layout says torch's
        (out, in, ...): an AdaptError naming the option, not an error in every case."""
        name = self.names.get("weight")
        if name is None or self.options.weight_layout != "torch":
            return
        theirs = tuple(reference.weight.shape)
        mine = tuple(getattr(getattr(self.user, name, None), "shape", theirs))
        layouts = {"in-out": theirs[::-1]} if len(theirs) == 2 else {}
        if len(theirs) == 4:
            layouts["hwio"] = (*theirs[2:], theirs[1], theirs[0])
        for layout, shape in layouts.items():
            if mine != theirs and mine == shape:
                raise AdaptError(
                    f"{type(self.user).__name__} keeps its weight {name} with shape {mine}, "
                    f"torch's is {theirs} (out, in, ...): pass --weight-layout {layout} "
                    f"(weight_layout={layout!r})"
                )

    def _user_name(self, name: str) -> str | None:
        """Where the user's layer keeps torch's parameter `name` (None: a function)."""
        if self.kind in ("function", "pair") or getattr(self, name) is None:
            return None
        if self.kind == "module":
            owned = dict(self.user.named_parameters(recurse=False))
            owned.update(dict(self.user.named_buffers(recurse=False)))
            found = next((a for a in WEIGHT_ALIASES.get(name, (name,)) if a in owned), None)
            found = found or attribute(self.user, WEIGHT_ALIASES.get(name, (name,)))
        else:
            found = attribute(self.user, WEIGHT_ALIASES.get(name, (name,)))
        if found is None:
            tried = ", ".join(WEIGHT_ALIASES.get(name, (name,)))
            raise AdaptError(
                f"{type(self.user).__name__} was tried as a {self.kind} but keeps no {name} "
                f"(tried attributes {tried})"
            )
        return found

    def _call(self) -> Call:
        names = [f"input{i}" for i in range(self.spec.inputs)] + list(self.spec.params)
        opts = self.spec.keyword_options(self.ctor, self.training)
        user = self.user
        array = self.options.array
        if self.kind == "pair":
            user = (
                tuple(self.user)
                if isinstance(self.user, tuple | list)
                else (self.user.forward, self.user.backward)
            )
            probe = [None] * (self.spec.inputs + len(self.spec.params))
            try:  # a forward without an option's keyword declines the configuration
                inspect.signature(user[0]).bind(*probe, **opts)
            except TypeError as e:
                raise Unsupported(f"TypeError: {e}") from e
        else:
            value = getattr(user, self.names.get("weight") or "", None)
            if array == "auto" and value is not None:
                array = "torch" if isinstance(value, torch.Tensor) else "numpy"
        return Call(self.kind, user, tuple(names), opts, array, self.spec.loss, dict(self.names))

    # layouts: torch's NCHW / (out, in) on the harness's side, the user's inside
    def _channels(self, t: torch.Tensor) -> int | None:
        s = self.spec.spatial
        if self.options.layout != "nhwc" or s == 0 or t.ndim not in (s + 1, s + 2):
            return None
        return t.ndim - s - 1

    def _weight(self, name: str, w: torch.Tensor | None) -> torch.Tensor | None:
        if w is None or name != "weight" or self.options.weight_layout == "torch":
            return w
        if self.options.weight_layout == "in-out":
            return w.t()
        return w.permute(*range(2, w.ndim), 1, 0)  # (out, in, kH, kW) -> (kH, kW, in, out)

    def train(self, mode: bool = True) -> Adapted:
        """torch's train/eval, passed on to the user's layer: an nn.Module's own `train(mode)`;
        a layer object's `training` attribute, or else its `train(mode)` where it has `eval`
        beside it (torch's pair: a lone `train` may be a training loop)."""
        super().train(mode)
        user = self.__dict__.get("user")
        if self.kind == "module":
            user.train(mode)
        elif self.kind == "layer" and hasattr(user, "training"):
            user.training = mode
        elif self.kind == "layer" and all(
            callable(getattr(user, m, None)) for m in ("train", "eval")
        ):
            user.train(mode)
        return self

    def kept_buffers(self) -> list[str]:
        """torch's buffers (running statistics) the user's layer keeps too: compared after a
        forward. A layer keeps one as an attribute of torch's name, a module as its buffer."""
        if self.kind == "module":
            return [n for n in self._buffers if _owns(self.user, n)]
        if self.kind == "layer":
            return [n for n in self._buffers if _array_like(getattr(self.user, n, None))]
        return []

    def forward(self, *inputs: torch.Tensor):
        cdim = self._channels(inputs[0])
        x = inputs[0] if cdim is None else inputs[0].movedim(cdim, -1)
        tensors = [x, *inputs[1:]]
        params = {n: self._weight(n, getattr(self, n)) for n in self.spec.params}
        out = self._run(tensors, params)
        self._sync_buffers()
        if cdim is not None and isinstance(out, torch.Tensor) and out.ndim == inputs[0].ndim:
            out = out.movedim(-1, cdim)
        return out

    def _run(self, tensors: list, params: dict):
        if self.kind == "function":
            values = self.spec.option_values(self.ctor, self.training)
            return self.user.apply(*tensors, *params.values(), *values.values())
        if self.kind == "module":
            self.user.to(tensors[0].dtype if tensors[0].is_floating_point() else None)
            state = {self.names[n]: p for n, p in params.items() if self.names.get(n)}
            state.update({n: b for n, b in self._buffers.items() if _owns(self.user, n)})
            return functional_call(self.user, state, tuple(tensors))
        self.call.options = self.spec.keyword_options(self.ctor, self.training)
        for name in self.kept_buffers():  # torch's running statistics in, as the weights go in
            value, b = getattr(self.user, name), self._buffers[name].detach()
            mine = b.clone() if torch.is_tensor(value) else b.cpu().numpy().copy()
            setattr(self.user, name, mine.reshape(value.shape))
        return UserFunction.apply(self.call, *tensors, *params.values())

    def _sync_buffers(self) -> None:
        """Running statistics a layer object keeps on attributes of torch's buffer names."""
        if self.kind != "layer":
            return
        for name in self.kept_buffers():
            b = self._buffers[name]
            b.copy_(torch.as_tensor(getattr(self.user, name)).reshape(b.shape).to(b.dtype))


def _array_like(value: Any) -> bool:
    """A tensor or NumPy array (a layer's running statistic), not a count or a method."""
    return torch.is_tensor(value) or (hasattr(value, "shape") and hasattr(value, "dtype"))


def _owns(module: torch.nn.Module, name: str) -> bool:
    return name in dict(module.named_buffers(recurse=False))
