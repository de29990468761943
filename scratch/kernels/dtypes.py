"""Which dtypes each kernel computes: the one dtype gate, called by the bridge before a kernel runs.

The rule: for each op, what torch computes for a dtype (on the CPU) we compute the same, result
dtype included, or refuse; a dtype torch refuses we refuse too. A refusal is always
`DtypeNotSupported`, a `NotImplementedError` (the type torch raises for a dtype it lacks, and a
`RuntimeError`, the type torch raises for mixed dtypes), so `except` clauses written for torch
catch it; its message names the op, the dtype and the backend, and says whether torch computes
it. Integer inputs to `sigmoid` / `tanh` are promoted to the default float dtype by the
functionals first, as torch does.

Per op family (torch's CPU behaviour, checked by tests/test_bad_input.py):

* computed by both: float16, float32, float64; bfloat16 on the torch backend only (NumPy has
  none); integers (not bool) for relu and max_pool2d/3d; every dtype NumPy holds for flatten.
* computed by torch, refused by us (`DtypeNotSupported`): complex for sigmoid, tanh, conv and
  linear (torch's complex gradients are conjugate-Wirtinger; ours are not written for it);
  integer conv / linear (all operands integer); int64 avg_pool (torch's integer division);
  bfloat16 on the NumPy backend.
* refused by both: everything else (torch raises NotImplementedError for most ops, and
  RuntimeError for dropout, conv and linear, whose refusals come from a dtype mismatch).
  torch sometimes computes an *empty* tensor of a dtype it refuses otherwise; we refuse it.

How float16 and bfloat16 are computed (`opmath`, applied by the bridge, scratch/autograd.py):
torch's CPU kernels compute these in float32 (their "opmath" type) and round each result once,
forward and backward alike. So the bridge hands a kernel float32 copies of the op's tensors of
that dtype (integer ones, such as class targets, as they are) and rounds each float32 output and
gradient back to it once; the kernel caches the float32 copies, so backward also runs on them,
but an output its cache holds (sigmoid's, softmax's) is held rounded, as torch saves it.
Outputs are fresh rounded tensors (never an input's memory); an in-place op still writes its
rounded result into its input, and autograd still watches the half tensors the cache was copied
from. float32, float64 and integers pass untouched. The exceptions (`_NATIVE`) are ops torch
computes in the dtype itself, rounding each step (dropout's noise, mse_loss's x - target, each
term of binary_cross_entropy); batch norm, whose kernels compute in float32 themselves around
statistics rounded to the dtype, as torch's (its saved mean and invstd are tensors of the dtype;
its strided path, for other layouts, rounds each step in the dtype); and ops without rounding
arithmetic (relu, max_pool, flatten), where float32 gives the same bits. The average pools
follow torch's CPU kernels step by step themselves: windows summed in their order, each
window's share of the gradient rounded to the dtype and added into grad_x in the dtype, window
by window (where windows overlap, float32 sums would be more exact than torch, and differ).
float16 conv runs forward in float32 and backward in float16 where torch's does
(`_native_backward`: it depends on the CPU). A few other torch kernels round intermediates too
(float16 conv's weight gradient, log_softmax): those agree to a couple of units in the last
place, not bit for bit (tests/test_dtypes.py).
"""

from __future__ import annotations

import functools
from typing import Any, TypeAlias

import torch

__all__ = ["ALWAYS", "REDUCED", "DtypeNotSupported", "check_dtype", "computed", "opmath"]

FLOATS = frozenset({torch.float16, torch.float32, torch.float64})
BF16 = frozenset({torch.bfloat16})
F16 = frozenset({torch.float16})
INTS = frozenset({torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64})
COMPLEX = frozenset({torch.complex64, torch.complex128})
ALWAYS = frozenset({torch.float32, torch.float64})  # computed by every op on every backend
REDUCED = frozenset({torch.float16, torch.bfloat16})  # computed in float32, rounded once
EVERY = frozenset(
    getattr(torch, name)
    for name in dir(torch)
    if isinstance(getattr(torch, name, None), torch.dtype)
)

Options: TypeAlias = tuple[tuple[str, Any], ...]


class DtypeNotSupported(NotImplementedError):
    """A dtype scratch does not compute for this op: refused, never computed wrongly."""


# op -> (dtypes torch computes, dtypes scratch computes).
# A key "op/d" refines an op for d spatial dims (pools); bfloat16 is added on the torch backend.
_TABLE: dict[str, tuple[frozenset, frozenset]] = {
    "relu": (FLOATS | BF16 | INTS, FLOATS | INTS),
    "leaky_relu": (FLOATS | BF16, FLOATS),
    "sigmoid": (FLOATS | BF16 | COMPLEX, FLOATS),
    "tanh": (FLOATS | BF16 | COMPLEX, FLOATS),
    "gelu": (FLOATS | BF16, FLOATS),
    "softmax": (FLOATS | BF16, FLOATS),
    "log_softmax": (FLOATS | BF16, FLOATS),
    "dropout": (FLOATS | BF16, FLOATS),
    "batch_norm": (FLOATS | BF16, FLOATS),
    "conv": (FLOATS | BF16 | COMPLEX | INTS, FLOATS),
    "linear": (FLOATS | BF16 | COMPLEX | INTS, FLOATS),
    "flatten": (EVERY, FLOATS | INTS | COMPLEX | {torch.bool}),
    "cross_entropy": (FLOATS | BF16, FLOATS),
    "nll_loss": (FLOATS | BF16, FLOATS),
    "mse_loss": (FLOATS | BF16, FLOATS),
    "binary_cross_entropy": (FLOATS | BF16, FLOATS),
    "binary_cross_entropy_with_logits": (FLOATS | BF16, FLOATS),
    "max_pool/1": (FLOATS | BF16, FLOATS),
    "max_pool": (FLOATS | BF16 | INTS, FLOATS | INTS),
    "avg_pool": (FLOATS | BF16 | {torch.int64}, FLOATS),
    "avg_pool/3": (FLOATS - F16 | {torch.int64}, FLOATS - F16),
    "adaptive_avg_pool": (FLOATS | BF16, FLOATS),
}
_SIZED = {"max_pool": "kernel_size", "avg_pool": "kernel_size"}
_SAME_DTYPE = {"conv", "linear"}  # torch refuses operands of different dtypes (RuntimeError)


def _entry(op: str, options: Options) -> tuple[frozenset, frozenset]:
    sized = _SIZED.get(op)
    if sized is not None:
        size = dict(options).get(sized)
        return _TABLE.get(f"{op}/{len(size)}", _TABLE[op]) if size else _TABLE[op]
    return _TABLE.get(op, (EVERY, EVERY))


def computed(op: str, backend: Any, options: Options = ()) -> frozenset:
    """The dtypes scratch computes for `op` on `backend` (a name or a kernel module)."""
    torch_computes, ours = _entry(op, options)
    if _is_torch(backend):
        ours = ours | (torch_computes & BF16)
    return ours


def _is_torch(backend: Any) -> bool:
    return backend == "torch" or getattr(backend, "__name__", "") == "scratch.kernels.torch"


def check_dtype(op: str, backend: Any, inputs: tuple, options: Options = ()) -> None:
    """Refuse the first tensor's dtype unless scratch computes it for `op` (see the module doc).

    `options` are the op's keyword options as (name, value) pairs (pools read their rank).
    """
    x = next((t for t in inputs if t is not None), None)
    if x is None:
        return
    torch_computes, ours = _entry(op, options)
    if x.dtype in ours or (x.dtype in BF16 and x.dtype in torch_computes and _is_torch(backend)):
        return
    name = getattr(backend, "__name__", backend)
    if op in _SAME_DTYPE and any(t is not None and t.dtype != x.dtype for t in inputs):
        described = ", ".join(str(t.dtype) for t in inputs if t is not None)
        raise DtypeNotSupported(f"scratch {op}: expected operands of one dtype, got {described}")
    if x.dtype in torch_computes:
        raise DtypeNotSupported(
            f"scratch {op}: {x.dtype} is not supported by the {name} backend (torch computes "
            "it; scratch refuses rather than compute it differently): use a float dtype"
        )
    raise DtypeNotSupported(f"scratch {op}: {x.dtype} is not supported (torch refuses it too)")


# Ops the bridge leaves in the input's dtype. torch computes these in it, rounding each step:
# dropout's noise mask / (1 - p) and mse_loss's x - target are tensors of x's dtype, so is each
# term of binary_cross_entropy (its gradient's floor 1e-12 rounds to 0 in float16: x = 0 or 1
# gives NaN); their means still sum and divide in float32, as the kernels' `_reduce` does.
# l2_penalty is a composite of torch ops. batch_norm computes in float32 but keeps its batch mean
# and invstd in the dtype, forward and backward (in the dtype throughout for a strided input):
# its kernels do the same themselves. flatten, relu and max_pool do no rounding arithmetic
# (copies, comparisons): float32 would give the same bits, slower. avg_pool and
# adaptive_avg_pool sum in float32 (3-d adaptive: in the dtype) and accumulate their gradients
# in the dtype, in torch's order: their kernels do it themselves.
_NATIVE = frozenset(
    {"dropout", "mse_loss", "binary_cross_entropy", "l2_penalty", "batch_norm"}
    | {"flatten", "relu", "max_pool"}
    | {"avg_pool", "adaptive_avg_pool"}  # their kernels follow torch's CPU order themselves
)


def _native_backward(op: str, dtype: torch.dtype) -> bool:
    """Whether `op` runs forward in float32 and backward in `dtype`, as torch's CPU float16 conv
    does where it runs its own kernels: their backward accumulates in float16 (run in float16,
    ours give its input gradient bit for bit). On a CPU with float16 arithmetic (AVX512-FP16 or
    AMX-FP16) torch runs it through oneDNN instead, float32 throughout and rounded once, as we
    do for other ops; `torch.backends.mkldnn.flags(enabled=False)` takes torch's own kernels.
    """
    if (op, dtype) != ("conv", torch.float16):
        return False
    return not (torch.backends.mkldnn.enabled and _onednn_float16())


@functools.cache
def _onednn_float16() -> bool:
    """Whether torch's CPU float16 conv runs in oneDNN here (its `mkldnn_fp16_device_check`)."""
    supported = getattr(torch.ops.mkldnn, "_is_mkldnn_fp16_supported", None)
    return bool(torch.backends.mkldnn.is_available() and supported is not None and supported())


class _Opmath:
    """A kernel module seen through float32: `from_tensor` upcasts tensors of `dtype` (other
    dtypes, such as class targets and indices, pass as they are), `to_tensor` rounds float32
    results back to `dtype` once, and a forward kernel's outputs are rounded where its cache
    holds them too; kernels and every other attribute are the module's own."""

    def __init__(self, module: Any, dtype: torch.dtype, native_backward: bool = False) -> None:
        self.module, self.dtype, self.native_backward = module, dtype, native_backward

    def __getattr__(self, name: str) -> Any:  # the kernels, shares, host_copy
        if name.endswith("_forward_"):  # an in-place kernel computes in `dtype`: not seen here,
            raise AttributeError(name)  # so the op's float32 output is copied in instead
        attr = getattr(self.module, name)  # looked up per call, as the bridge does
        if name.endswith("_forward"):
            return self._saving_rounded(attr)
        return self._in_dtype(attr) if self.native_backward and name.endswith("_backward") else attr

    def _in_dtype(self, backward):
        """`backward` run on its cache's float32 arrays and grad_y back in `dtype` (exactly: they
        hold values of it), its gradients in `dtype`."""

        def run(cache, grad_y, needs):
            fields = getattr(cache, "_fields", ())
            held = {f: r for f, v in zip(fields, cache) if (r := self._round(v, True)) is not None}
            grad = self._round(grad_y, cast=True)  # float32 from `from_tensor`
            return backward(cache._replace(**held) if held else cache, grad, needs)

        return run

    def _saving_rounded(self, forward):
        """`forward` with its float32 outputs rounded to `dtype` (kept as float32), in its cache
        too: torch saves an op's output in the dtype, so a backward written in terms of the
        output (sigmoid, tanh, softmax, log_softmax) reads the rounded values, as torch's."""

        def run(*arrays, **options):
            outputs, cache = forward(*arrays, **options)
            single = not isinstance(outputs, tuple)
            outs = (outputs,) if single else outputs
            rounded = {id(o): r for o in outs if (r := self._round(o)) is not None}
            outs = tuple(rounded.get(id(o), o) for o in outs)
            fields = getattr(cache, "_fields", ())  # a NamedTuple, as the kernel contract says
            held = {f: rounded[id(v)] for f, v in zip(fields, cache) if id(v) in rounded}
            return (outs[0] if single else outs), (cache._replace(**held) if held else cache)

        return run

    def _round(self, a, cast: bool = False):
        """A float32 array's values rounded to `dtype`, as a float32 array (or, cast, as an array
        of `dtype`); None for anything else."""
        if not hasattr(a, "dtype"):
            return None
        device = a.device if isinstance(a, torch.Tensor) else torch.device("cpu")
        t = self.module.to_tensor(a, device, ())
        if t.dtype != torch.float32:
            return None
        t = t.to(self.dtype)
        return self.module.from_tensor(t if cast else t.float())

    def from_tensor(self, t: torch.Tensor):
        return self.module.from_tensor(t.float() if t.dtype == self.dtype else t)

    def to_tensor(self, a, device: torch.device, inputs: tuple) -> torch.Tensor:
        t = self.module.to_tensor(a, device, inputs)
        # a fresh tensor: the rounded copy never aliases an input
        return t.to(self.dtype) if t.dtype == torch.float32 else t


_opmath: dict[tuple, _Opmath] = {}


def opmath(op: str, module: Any, dtype: torch.dtype) -> Any:
    """The kernel module to run `op` on inputs of reduced-precision `dtype` (see the module doc):
    `module` seen through float32, or `module` itself for an op torch computes in `dtype`."""
    if op in _NATIVE:
        return module
    key = (module, dtype, _native_backward(op, dtype))
    try:
        return _opmath[key]
    except KeyError:
        view = _opmath[key] = _Opmath(*key)
        return view
