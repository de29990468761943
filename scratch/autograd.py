"""The one bridge from a pure kernel pair to a `torch.autograd.Function`.

A kernel pair is `<op>_forward(*arrays, **options) -> (outputs, cache)` and
`<op>_backward(cache, grad_y, needs) -> grads`, found by name in a backend module
(`scratch.kernels.numpy`, `scratch.kernels.torch`, or any module following the contract in
`scratch.kernels`). Tensors cross into a backend and back only here, through the backend's own
`from_tensor` / `to_tensor`, so this bridge has no per-backend branch:

* NumPy backend: tensors become read-only NumPy views (no copy on the CPU, any strides); a
  kernel that tries to write into its input fails loudly. Tensors on another device (CUDA, MPS)
  round-trip through the CPU, and results go back to the input's device.
* torch backend: kernels get the tensors themselves, on their own device, and run with grad
  mode off (a Function's forward always does; the bridge runs backward so).

Outputs keep the inputs' dtype and device, never alias an input (unless the op is in-place,
as torch's `inplace=True`), and only the first output is differentiable (the others, such as
max-pool indices or batch statistics, are marked non-differentiable). float16 and bfloat16
inputs run through float32 and are rounded once, as torch's CPU kernels do
(`scratch.kernels.dtypes.opmath`).

The hot path is per op call, so it is kept to what a Python `autograd.Function` must do:
the kernels are looked up by a name built once per op (a plain `getattr`, so a kernel patched
on its module is still seen), the kernel module and the keyword options are resolved once per
`Call`, the dtype gate is skipped for float32/float64 (every op computes them), the cache is
matched against the kernel's arrays by identity first, arrays the kernel allocated are passed
over where no output is a view, and only its other arrays are compared by `backend.shares`,
and backward runs with no no_grad context: grad mode is off there (create_graph=True raises).
`scratch bench --only overhead` (fwd+bwd of an 8x8 layer, one thread), us per
call over torch.nn, on an AMD EPYC before this round / after: Linear numpy +29 / +15-20, torch
+29 / +16-18; ReLU numpy +27 / +13-15, torch +28 / +10-11; the floor, an empty
`autograd.Function` round trip, is torch.nn's own ReLU time (+1). On an Intel Xeon (whose
Python runs slower against torch's C++) the same code reads Linear +28-36 / +26-32, ReLU +29-33
/ +16-19; there a Function doing nothing but NumPy's conversions and ops (x.numpy(), one ufunc,
torch.from_numpy) already costs ReLU +10 us over the floor, ours +22.
Passing over the fresh arrays of a cache (ReLU's mask) and one input without a comprehension:
ReLU 3-6 us a call less (in-process A/B on the Xeon, 8x8, both backends), Linear unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import torch

from scratch.kernels import Array, Backend, check_backend, kernels
from scratch.kernels.dtypes import ALWAYS, REDUCED, check_dtype, opmath
from scratch.kernels.shared import is_one_of

__all__ = ["Call", "kernel_function", "made_by", "no_double_backward"]

_plain_calls: dict[tuple, Call] = {}  # (backend, inplace) -> its option-less Call, reused


@dataclass(frozen=True)
class Call:
    """Everything non-tensor about one call: backend, the op's keyword options, in-place or not."""

    backend: Backend
    options: tuple[tuple[str, Any], ...] = ()
    inplace: bool = False
    # derived once, not per kernel call: the backend's kernel module and the options as kwargs
    module: ModuleType = field(init=False, repr=False, compare=False)
    kwargs: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "module", kernels(self.backend))
        object.__setattr__(self, "kwargs", dict(self.options))

    @classmethod
    def of(cls, backend: Backend, inplace: bool = False, **options: Any) -> Call:
        if options:  # values compared by == would merge 0.0 with -0.0 and 1 with True
            return cls(check_backend(backend), tuple(options.items()), inplace)
        try:
            return _plain_calls[backend, inplace]
        except KeyError:
            call = _plain_calls[backend, inplace] = cls(check_backend(backend), (), inplace)
            return call


def _read_by_cache(module, cache, tensors: tuple, arrays: tuple, outs: tuple) -> list[torch.Tensor]:
    """The tensors (inputs and outputs, beside the `arrays` the kernels saw, `outs` last) whose
    memory the cache's arrays read: the ones to save, so that autograd's version counter
    catches an in-place change before backward.

    An array the cache holds that IS one of `arrays` (the common case: linear keeps x and W)
    marks its tensor. One the kernel allocated (the backend's optional `fresh`: not a view)
    reads no input, which predates it, and no output unless an output is a view: with no
    output a view it is passed over (ReLU's mask: 4.4-5.5 us of the ~29 us an 8x8 ReLU costs
    over torch's, measured here). Any other (a view, an im2col matrix) is compared by the
    backend's `shares` with every array. As torch's saved tensors, a change to a tensor that
    merely shares memory with a saved one, without being a view of it, is not caught.
    The arrays a cache holds sit in its fields, directly or in a tuple field.
    """
    held = []
    for v in cache:
        if isinstance(v, tuple):
            held.extend(f for f in v if isinstance(f, Array))
        elif isinstance(v, Array):
            held.append(v)
    if not held:
        return []
    fresh = getattr(module, "fresh", None)
    if fresh is not None:
        for o in outs:
            if not fresh(o):  # an output viewing memory: a fresh array may be its base
                fresh = None
                break
    # the kernel worked on CPU copies of tensors elsewhere: changes to those cannot reach it
    host = getattr(module, "host_copy", False)
    read, views, seen = [], [], set()  # seen: ids, as `in` on tensors would compare values
    for f in held:  # plain loops: a generator per array costs more than the whole test
        for tensor, array in zip(tensors, arrays):
            if array is f:
                if not (host and not tensor.is_cpu) and id(tensor) not in seen:
                    read.append(tensor)
                    seen.add(id(tensor))
                break
        else:
            if fresh is None or not fresh(f):
                views.append(f)
    if views:
        shares = module.shares
        for tensor, array in zip(tensors, arrays):
            if array is None or (host and not tensor.is_cpu) or id(tensor) in seen:
                continue
            for f in views:
                if shares(f, array):
                    read.append(tensor)
                    break
    return read


def _check_same_kind(op: str, inputs: tuple) -> None:
    """torch refuses mixed float dtypes or devices in one op instead of promoting: so do we."""
    dtype = device = None
    for t in inputs:
        if t is None:
            continue
        if device is None:
            device = t.device
        elif t.device != device:
            break
        if t.is_floating_point():
            if dtype is None:
                dtype = t.dtype
            elif t.dtype != dtype:
                break
    else:
        return
    tensors = [t for t in inputs if t is not None]
    described = ", ".join(f"{tuple(t.shape)} {t.dtype} on {t.device}" for t in tensors)
    raise RuntimeError(
        f"scratch {op}: expected all tensors to have the same floating dtype and device, "
        f"got {described}"
    )


def _inplace_target(module, name: str, t: torch.Tensor):
    """For an in-place call on `t`: the array the backend's in-place kernel `name` writes into
    (`writable(t)`, viewing t's memory), or None where the op instead computes a fresh output
    that is copied into t (no such kernel, no writable view of t, or a non-contiguous t, whose
    elements may overlap: copy_ then refuses those as torch does).

    VGG16's first ReLU(inplace=True), (8, 64, 224, 224), forward and its own backward: 72-92 ->
    32-36 ms (NumPy) and 114 -> 31 ms (torch), torch.nn's 12-16 ms (one thread, measured here)."""
    writable = getattr(module, "writable", None)
    if writable is None or getattr(module, name, None) is None or not t.is_contiguous():
        return None
    return writable(t)


def _missing_gradient(op: str, grads: tuple, needs: tuple) -> None:
    for i, (g, need) in enumerate(zip(grads, needs)):
        if need and g is None:
            raise NotImplementedError(
                f"scratch {op}: the gradient with respect to argument {i} is not implemented"
            )


def kernel_function(op: str) -> type[torch.autograd.Function]:
    """Build the `torch.autograd.Function` for kernel pair `<op>_forward` / `<op>_backward`.

    Call it as `Fn.apply(call, *tensors)`, tensors (or None) in the kernel's argument order.
    """
    # Over 40 lines on purpose: forward and backward are closures over `op`, read as one pair
    # with the class they become; each stays under 30 lines.
    forward_name, backward_name = f"{op}_forward", f"{op}_backward"  # looked up per call
    inplace_name = f"{op}_forward_"  # optional: the in-place kernel
    keep_name = f"{op}_keep"  # optional: the cache as backward reads it for the asked-for grads

    def forward(ctx, call: Call, *inputs: torch.Tensor | None):
        if len(inputs) > 1:
            _check_same_kind(op, inputs)
        first = inputs[0] if inputs[0] is not None else next(t for t in inputs if t is not None)
        module = call.module
        if first.dtype not in ALWAYS:  # float32 / float64: the gate has nothing to refuse
            check_dtype(op, call.backend, inputs, call.options)  # torch's dtype rule, or refuse
            if first.dtype in REDUCED:  # float16 / bfloat16: computed in float32, rounded once
                module = opmath(op, module, first.dtype)  # (backward too, through ctx.module)
        from_tensor, to_tensor = module.from_tensor, module.to_tensor
        x = _inplace_target(module, inplace_name, inputs[0]) if call.inplace else None
        if x is None:
            if len(inputs) == 1:  # activations: no comprehension (its frame costs ~0.5 us)
                arrays = (from_tensor(first),)
            else:
                arrays = tuple([None if t is None else from_tensor(t) for t in inputs])
            outputs, cache = getattr(module, forward_name)(*arrays, **call.kwargs)
        else:  # the in-place kernel writes its output into x, the input's memory
            arrays = (x, *[None if t is None else from_tensor(t) for t in inputs[1:]])
            outputs, cache = x, getattr(module, inplace_name)(*arrays, **call.kwargs)
        keep = getattr(module, keep_name, None)
        if keep is not None:
            cache = keep(cache, ctx.needs_input_grad[1:])
        device = first.device
        if isinstance(outputs, tuple):
            outs = outputs
            results = [to_tensor(o, device, arrays) for o in outputs]
            ctx.mark_non_differentiable(*results[1:])
        elif x is None:
            outs, results = (outputs,), [to_tensor(outputs, device, arrays)]
        else:  # the in-place kernel's output is the input itself
            outs, results = (x,), [inputs[0]]
        if call.inplace:
            if x is None:
                inputs[0].copy_(results[0])
            ctx.mark_dirty(inputs[0])
            results[0] = inputs[0]
        # The tensors whose memory the cache reads: saved so that autograd's version counter
        # catches an in-place change before backward, exactly where torch itself would raise.
        read = _read_by_cache(module, cache, (*inputs, *results), (*arrays, *outs), outs)
        if read:
            if results[0] is outs[0] and is_one_of(outs[0], read):
                # The cache holds the very tensor handed back (the torch backend's sigmoid
                # keeps y): its grad_fn would lead back through ctx to the cache, a cycle that
                # only gc frees, keeping every step's graph and activations alive until then.
                # Hand back an alias: the same memory and version counter, no cycle.
                results[0] = outs[0].detach()
                read = [results[0] if t is outs[0] else t for t in read]
            ctx.save_for_backward(*read)
        # The device, not an input tensor: an in-place output is its own input, and a tensor
        # kept on ctx outside save_for_backward makes a cycle (tensor -> grad_fn -> ctx ->
        # tensor) through C++ that Python's gc cannot see, leaking it and its graph.
        ctx.cache, ctx.module, ctx.device = cache, module, device
        return tuple(results) if outs is outputs else results[0]

    def backward_once(ctx, grad_y: torch.Tensor, *_: torch.Tensor):
        ctx.saved_tensors  # noqa: B018 - raises if a tensor the cache reads was modified in place
        needs = ctx.needs_input_grad[1:]
        module, device = ctx.module, ctx.device
        grad_array = module.from_tensor(grad_y)
        grads = getattr(module, backward_name)(ctx.cache, grad_array, needs)
        to_tensor, inputs = module.to_tensor, (grad_array,)
        out = [None]
        for g, need in zip(grads, needs):
            if not need:
                out.append(None)
            elif g is None:
                _missing_gradient(op, grads, needs)
            else:
                out.append(to_tensor(g, device, inputs))
        return tuple(out)

    def backward(ctx, *grads: torch.Tensor):
        """`backward_once`, which runs with grad mode off (a plain `.backward()` already turns
        it off; a no_grad context would cost ~2.5 us a call, measured)."""
        if torch.is_grad_enabled():  # create_graph=True
            raise no_double_backward(f"scratch {op}")
        return backward_once(ctx, *grads)

    name = "".join(part.title() for part in op.split("_")) + "Function"
    attrs = {
        "forward": staticmethod(forward),
        "backward": staticmethod(backward),
        "scratch_op": op,  # the marker: made here, for kernel pair `op` (see made_by)
    }
    return type(name, (torch.autograd.Function,), attrs)


def no_double_backward(what: str) -> RuntimeError:
    """The error of a hand-written backward asked for a differentiable gradient.

    Under `create_graph=True` autograd would record the gradient's own graph, and a backward
    computed outside autograd has none. Raised at once: torch's `once_differentiable` instead
    returns a gradient that raises only if differentiated through its upstream gradient, and
    else hands it back as a constant, so a gradient penalty's term silently dropped out of
    the loss's gradient; a lazily raising gradient would not do either, as
    `torch.autograd.grad(..., inputs)` skips a node that does not lead to its inputs.
    """
    return RuntimeError(
        f"{what}: its backward is hand-written, outside autograd, so its gradient cannot be "
        "differentiated: double backward (create_graph=True, as for a gradient penalty) is "
        "not supported"
    )


def made_by(tensor: torch.Tensor) -> str | None:
    """The kernel op whose scratch Function computed `tensor` (from its `grad_fn`), else None.

    Looks through the `squeeze(0)` by which a functional gives an unbatched input its shape
    back. None for a tensor torch's own ops made, and for one outside autograd's graph.
    """
    node = tensor.grad_fn
    while node is not None and node.name().startswith("SqueezeBackward"):
        node = node.next_functions[0][0]
    forward_cls = getattr(type(node), "_forward_cls", None)  # a BackwardCFunction's Function
    return getattr(forward_cls, "scratch_op", None)
