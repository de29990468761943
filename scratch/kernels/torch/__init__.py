"""The torch backend: every kernel pair by name (`<op>_forward` / `<op>_backward`), run on the
tensors' own device without autograd, and its (trivial) conversion of tensors."""

from __future__ import annotations

import torch

from scratch.kernels.shared import is_one_of

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


def from_tensor(t: torch.Tensor) -> torch.Tensor:
    """`t` itself: kernels run on the tensor's own device, with grad mode off (a Function's
    forward and, through the bridge, its backward), so nothing they compute is recorded.

    No `detach()`: it built a tensor per input and per grad_y, 3-5 us of an 8x8 ReLU's
    fwd+bwd (62-65 -> 60 us) and of an 8x8 Linear's (104-107 -> 100-102 us), torch.nn's 33
    and 67 (one thread, an AMD EPYC, measured here). A cache keeping an input keeps the
    input itself, whose grad_fn is the layer before: no cycle back to this one.
    """
    return t


def writable(t: torch.Tensor) -> torch.Tensor:
    """`t` detached, for an in-place kernel to write into: the same memory."""
    return t.detach()


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def to_tensor(a: torch.Tensor, device: torch.device, inputs: tuple) -> torch.Tensor:
    """`a` as a Function's output: a clone if it aliases an input, a fresh tensor if a view."""
    # `untyped_storage()` costs ~1 us a call: only a view, or an input itself, can alias an
    # input (kernels never detach an input), so a fresh result skips the storage comparison.
    view = a._is_view()
    if (view and _aliases(a, inputs)) or is_one_of(a, inputs):
        return a.clone()
    if view:
        # autograd forbids in-place ops (an in-place ReLU after a conv) on a view a Function
        # returns: hand back the same memory as a fresh tensor instead of copying it.
        fresh = torch.empty((0,), dtype=a.dtype, device=a.device)
        return fresh.set_(a.untyped_storage(), a.storage_offset(), a.shape, a.stride())
    return a


def _aliases(a: torch.Tensor, inputs: tuple) -> bool:
    ptr = _storage(a)
    return any(isinstance(t, torch.Tensor) and _storage(t) == ptr for t in inputs)


def fresh(a) -> bool:
    """Whether tensor `a` is no view: memory of its own (kernels never detach an input again,
    so an input's memory reaches them only as the input itself or views of it)."""
    return isinstance(a, torch.Tensor) and not a._is_view()


def shares(a, b) -> bool:
    """Whether tensors `a` and `b` share storage (two non-views that are not one never do)."""
    if a is b:
        return True
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return False
    if not (a._is_view() or b._is_view()) or not (a.numel() and b.numel()):
        return False
    return _storage(a) == _storage(b)


host_copy = False  # kernels see the tensors themselves
