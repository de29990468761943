"""The one bridge from a pure kernel pair to a `torch.autograd.Function`.

A kernel pair is `<op>_forward(*arrays, **options) -> (outputs, cache)` and
`<op>_backward(cache, grad_y, needs) -> grads`, found by name in a backend module
(`scratch.kernels.numpy`, `scratch.kernels.torch`, or any module following the contract in
`scratch.kernels`). Tensors cross into a backend and back only here, through the backend's own
`from_tensor` / `to_tensor`, so this bridge has no per-backend branch:

* NumPy backend: tensors become read-only NumPy views (no copy on the CPU, any strides); a
  kernel that tries to write into its input fails loudly. Tensors on another device (CUDA, MPS)
  round-trip through the CPU, and results go back to the input's device.
* torch backend: kernels get detached tensors on their own device and run without autograd.

Outputs keep the inputs' dtype and device, never alias an input (unless the op is in-place,
as torch's `inplace=True`), and only the first output is differentiable (the others, such as
max-pool indices or batch statistics, are marked non-differentiable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from scratch.kernels import Array, Backend, check_backend, kernels
from scratch.kernels.dtypes import check_dtype

__all__ = ["Call", "kernel_function", "made_by"]


@dataclass(frozen=True)
class Call:
    """Everything non-tensor about one call: backend, the op's keyword options, in-place or not."""

    backend: Backend
    options: tuple[tuple[str, Any], ...] = ()
    inplace: bool = False

    @classmethod
    def of(cls, backend: Backend, inplace: bool = False, **options: Any) -> Call:
        return cls(check_backend(backend), tuple(options.items()), inplace)


def _arrays_in(cache) -> list:
    """The arrays a cache holds, directly or in a tuple field."""
    fields = (f for v in cache for f in (v if isinstance(v, tuple) else (v,)))
    return [f for f in fields if isinstance(f, Array)]


def _cache_reads(module, held: list, tensor: torch.Tensor | None, array) -> bool:
    """Whether the cache's arrays `held` read `array`, itself the memory of `tensor`."""
    if tensor is None or array is None:
        return False
    if getattr(module, "host_copy", False) and tensor.device.type != "cpu":
        return False  # the kernel worked on a CPU copy: changes to `tensor` cannot reach it
    return any(f is array or module.shares(f, array) for f in held)


def _check_same_kind(op: str, inputs: tuple) -> None:
    """torch refuses mixed float dtypes or devices in one op instead of promoting: so do we."""
    tensors = [t for t in inputs if t is not None]
    floats = {t.dtype for t in tensors if t.is_floating_point()}
    devices = {t.device for t in tensors}
    if len(floats) > 1 or len(devices) > 1:
        described = ", ".join(f"{tuple(t.shape)} {t.dtype} on {t.device}" for t in tensors)
        raise RuntimeError(
            f"scratch {op}: expected all tensors to have the same floating dtype and device, "
            f"got {described}"
        )


def kernel_function(op: str) -> type[torch.autograd.Function]:
    """Build the `torch.autograd.Function` for kernel pair `<op>_forward` / `<op>_backward`.

    Call it as `Fn.apply(call, *tensors)`, tensors (or None) in the kernel's argument order.
    """
    # Over 40 lines on purpose: forward and backward are closures over `op`, read as one pair
    # with the class they become; each stays under 30 lines.

    def forward(ctx, call: Call, *inputs: torch.Tensor | None):
        _check_same_kind(op, inputs)
        check_dtype(op, call.backend, inputs, call.options)  # torch's dtype rule, or refuse
        module = kernels(call.backend)
        arrays = tuple(None if t is None else module.from_tensor(t) for t in inputs)
        outputs, cache = getattr(module, f"{op}_forward")(*arrays, **dict(call.options))
        single = not isinstance(outputs, tuple)
        device = next(t for t in inputs if t is not None).device
        results = [module.to_tensor(o, device, arrays) for o in ((outputs,) if single else outputs)]
        if call.inplace:
            inputs[0].copy_(results[0])
            ctx.mark_dirty(inputs[0])
            results[0] = inputs[0]
        ctx.mark_non_differentiable(*results[1:])
        # The tensors whose memory the cache reads: saved so that autograd's version counter
        # catches an in-place change before backward, exactly where torch itself would raise.
        pairs = [*zip(inputs, arrays), *zip(results, (outputs,) if single else outputs)]
        held = _arrays_in(cache)
        ctx.save_for_backward(*(t for t, a in pairs if _cache_reads(module, held, t, a)))
        # The device, not an input tensor: an in-place output is its own input, and a tensor
        # kept on ctx outside save_for_backward makes a cycle (tensor -> grad_fn -> ctx ->
        # tensor) through C++ that Python's gc cannot see, leaking it and its graph.
        ctx.cache, ctx.call, ctx.device = cache, call, device
        return results[0] if single else tuple(results)

    @once_differentiable
    def backward(ctx, grad_y: torch.Tensor, *_: torch.Tensor):
        ctx.saved_tensors  # noqa: B018 - raises if a tensor the cache reads was modified in place
        needs = tuple(ctx.needs_input_grad[1:])
        module = kernels(ctx.call.backend)
        grad_array = module.from_tensor(grad_y)
        grads = getattr(module, f"{op}_backward")(ctx.cache, grad_array, needs)
        for i, (g, need) in enumerate(zip(grads, needs)):
            if need and g is None:
                raise NotImplementedError(
                    f"scratch {op}: the gradient with respect to argument {i} is not implemented"
                )
        return (None,) + tuple(
            module.to_tensor(g, ctx.device, (grad_array,)) if need else None
            for g, need in zip(grads, needs)
        )

    name = "".join(part.title() for part in op.split("_")) + "Function"
    attrs = {
        "forward": staticmethod(forward),
        "backward": staticmethod(backward),
        "scratch_op": op,  # the marker: made here, for kernel pair `op` (see made_by)
    }
    return type(name, (torch.autograd.Function,), attrs)


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
