"""What every kernel test shares: backends, dtypes, tolerances, row ids, and the kernel-pair call.

The generator fixture `gen` (seeded by `seed`) comes from tests/conftest.py. A kernel test
calls `run_pair(backend, op, inputs, grad_y, needs, **options)`: the pair `<op>_forward` /
`<op>_backward` of one backend, fed as the bridge feeds it (NumPy gets read-only views, any
strides; torch gets the tensors), results back as tensors. Row ids start with the op spelled
as in the case table (`row_id`), so `pytest -k crossentropy` selects the rows of both tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from scratch.kernels import BACKENDS, kernels

__all__ = [
    "BACKENDS",
    "DTYPES",
    "TOLERANCES",
    "as_array",
    "as_tensor",
    "assert_close",
    "assert_grads",
    "assert_untouched",
    "row_id",
    "run_pair",
]

DTYPES = {"float64": torch.float64, "float32": torch.float32}  # parametrize(ids=DTYPES.keys())
# float64: tight; float32: torch.testing.assert_close's defaults (as the case table).
TOLERANCES = {torch.float64: {"rtol": 1e-10, "atol": 1e-12}, torch.float32: {}}


def assert_close(actual, expected, dtype: torch.dtype, **kwargs) -> None:
    """torch.testing.assert_close at the tolerance of `dtype`."""
    torch.testing.assert_close(actual, expected, **TOLERANCES[dtype], **kwargs)


def assert_grads(grads, expected, dtype: torch.dtype) -> None:
    """Each grad close to torch's, and None exactly where torch's is (pairs as `zip` makes)."""
    for grad, want in zip(grads, expected):
        if want is None:
            assert grad is None
        else:
            assert_close(grad, want, dtype)


def assert_untouched(inputs, originals) -> None:
    """Kernels never write into an input: each input still equals its copy from before."""
    for t, original in zip(inputs, originals):
        if t is not None:
            torch.testing.assert_close(t, original, rtol=0, atol=0)


def row_id(op: str, d: int, name: str) -> str:
    """A row's test id, `<op><d>d-<name>` (`conv2d-k3`; a leading `2d-` in `name` is dropped)."""
    prefix = f"{op}{d}d"
    return prefix if name == f"{d}d" else f"{prefix}-{name.removeprefix(f'{d}d-')}"


def as_array(t: torch.Tensor | None, backend: str):
    """What the bridge hands a kernel: the tensor itself, or a read-only NumPy view of it."""
    if t is None or backend == "torch":
        return t
    a = t.numpy()
    a.flags.writeable = False  # kernels are pure: writing into an input must fail
    return a


def as_tensor(a) -> torch.Tensor | None:
    """A kernel's result as a tensor (a NumPy result keeps its strides unless read-only)."""
    if a is None or isinstance(a, torch.Tensor):
        return a
    a = np.asarray(a)
    return torch.as_tensor(a if a.flags.writeable else a.copy())


def run_pair(
    backend: str,
    op: str,
    inputs: Sequence,
    grad_y: torch.Tensor,
    needs: tuple[bool, ...],
    **options,
):
    """Forward then backward of kernel pair `op`: (outputs, grads), tuples of tensors or None."""
    module = kernels(backend)
    outputs, cache = getattr(module, f"{op}_forward")(
        *(as_array(t, backend) for t in inputs), **options
    )
    grads = getattr(module, f"{op}_backward")(cache, as_array(grad_y, backend), needs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    return tuple(as_tensor(o) for o in outputs), tuple(as_tensor(g) for g in grads)
