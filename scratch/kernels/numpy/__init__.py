"""The numpy backend: every kernel pair by name (`<op>_forward` / `<op>_backward`), and the
conversion between tensors and the NumPy arrays its kernels read and write."""

from __future__ import annotations

import functools

import numpy as np
import torch

# l2_penalty is operators only: one pair in kernels/shared.py serves both backends; as does
# linear's optional keep (see scratch.kernels), the cache's fields the same in both
from scratch.kernels.shared import l2_penalty_backward as l2_penalty_backward
from scratch.kernels.shared import l2_penalty_forward as l2_penalty_forward
from scratch.kernels.shared import linear_keep as linear_keep

from .activation import *  # noqa: F403
from .conv import *  # noqa: F403
from .dropout import *  # noqa: F403
from .linear import *  # noqa: F403
from .loss import *  # noqa: F403
from .norm import *  # noqa: F403
from .pooling import *  # noqa: F403

_CPU = torch.device("cpu")


try:  # NumPy's own errstate, entered without building its context object per call
    from numpy._core._ufunc_config import (  # type: ignore[attr-defined]
        _extobj_contextvar,
        _make_extobj,
    )

    _IGNORE = _make_extobj(all="ignore")
except ImportError:  # a NumPy without these internals: the public (slower) context manager
    _extobj_contextvar = None


def silent(kernel):
    """`kernel` under `np.errstate(all="ignore")`: NaN and inf are values here, as in torch,
    which never warns about them; NumPy's RuntimeWarnings would be errors under `-W error`.

    What `np.errstate` does, set and reset NumPy's error-state context variable, with the
    state built once: 0.15 us a call against 1.2 us for `with np.errstate(...)` (measured
    here), paid twice by every op call (forward and backward kernels).
    """
    if _extobj_contextvar is None:

        @functools.wraps(kernel)
        def run_public(*args, **kwargs):
            with np.errstate(all="ignore"):
                return kernel(*args, **kwargs)

        return run_public

    @functools.wraps(kernel)
    def run(*args, **kwargs):
        token = _extobj_contextvar.set(_IGNORE)
        try:
            return kernel(*args, **kwargs)
        finally:
            _extobj_contextvar.reset(token)

    return run


for _name in [n for n in dir() if n.endswith(("_forward", "_forward_", "_backward"))]:
    globals()[_name] = silent(globals()[_name])


def from_tensor(t: torch.Tensor) -> np.ndarray:
    """A read-only NumPy view of `t` (no copy on the CPU, any strides; a CPU copy elsewhere)."""
    if t.dtype == torch.bfloat16:
        raise TypeError("the numpy backend has no bfloat16: use backend='torch' or float32")
    # `numpy(force=True)` is detach + cpu in one call: 1.3 us against 2.0 us for
    # `detach().cpu().numpy()` on a CPU tensor that requires grad (measured here), no copy.
    try:
        a = t.numpy(force=True)
    except NotImplementedError:  # torch's "Cannot copy out of meta tensor; no data!"
        if t.is_meta:
            raise NotImplementedError(
                "the numpy backend computes values, and a meta tensor has none: "
                "use backend='torch', whose kernels run on meta tensors (shapes only)"
            ) from None
        raise
    a.setflags(write=False)  # kernels are pure: writing into an input is a bug
    return a


def writable(t: torch.Tensor) -> np.ndarray | None:
    """A writable NumPy view of `t`'s memory for an in-place kernel; None off the CPU (kernels
    there see a copy, so the op's output is copied into `t` instead)."""
    return t.numpy(force=True) if t.is_cpu and t.dtype != torch.bfloat16 else None


def to_tensor(a: np.ndarray, device: torch.device, inputs: tuple) -> torch.Tensor:
    """A tensor on `device` owning `a`'s values; copied if `a` shares memory with an input."""
    if type(a) is not np.ndarray:
        a = np.asarray(a)  # a NumPy scalar from a reduction
    # An array owning its memory (no base) is a fresh result: it cannot be an input's memory.
    if a.base is not None or not a.flags.writeable:
        aliased = any(isinstance(t, np.ndarray) and np.may_share_memory(a, t) for t in inputs)
        if aliased or not a.flags.writeable:
            a = np.array(a, copy=True)
    t = torch.from_numpy(a)
    return t if device == _CPU else t.to(device)  # `==`: 0.04 us, `device.type`: 0.4 us


def fresh(a) -> bool:
    """Whether `a` is an array owning its memory (no base): one a kernel allocated."""
    return type(a) is np.ndarray and a.base is None


def shares(a, b) -> bool:
    """Whether arrays `a` and `b` may share memory.

    An array owning its memory was allocated by a kernel; one viewing a tensor (`from_tensor`'s
    arrays: their base is the tensor) holds a tensor's memory: the two never overlap, and
    neither do two arrays that own theirs. Only views of other arrays need NumPy's test.
    """
    if a is b:
        return True
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return False
    base_a, base_b = a.base, b.base
    if base_a is None or base_b is None:  # one owns its memory: the other must view it
        other = base_b if base_a is None else base_a
        if other is None or isinstance(other, torch.Tensor):
            return False
    return np.may_share_memory(a, b)


host_copy = True  # kernels see CPU copies of tensors on other devices
