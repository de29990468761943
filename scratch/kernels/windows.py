"""Window arithmetic shared by every sliding-window kernel (conv, pooling), in any number of dims.

Pure integer arithmetic, no arrays: output sizes, padding amounts and the index maps of the
non-zero padding modes, all with torch's formulas, so forward and backward of both backends
agree on the geometry by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


def ntuple(value: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    """`3` -> `(3, 3)`; a sequence must already have `n` entries (torch's `_ntuple` + a check)."""
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * n
    if len(value) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value}")
    return value


def same_padding(kernel: Sequence[int], dilation: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """padding='same': `(lo, hi)` per dim; an odd total puts the extra element at the end, as torch."""
    pads = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def conv_out_size(size: int, kernel: int, stride: int, lo: int, hi: int, dilation: int) -> int:
    """torch's convolution output size along one dim (may be < 1: the caller raises)."""
    return (size + lo + hi - dilation * (kernel - 1) - 1) // stride + 1


def pool_out_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> int:
    """torch's `pooling_output_shape`: ceil mode drops a last window that starts in the padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


class PoolGeometry(NamedTuple):
    """Where the windows of a pooling op lie along each spatial dim."""

    out: tuple[int, ...]  # output size per dim
    lo: tuple[int, ...]  # padding before, per dim
    hi: tuple[int, ...]  # padding after, per dim: enough for the last (ceil-mode) window


def pool_geometry(
    spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    ceil_mode: bool,
) -> PoolGeometry:
    """Output sizes and the padding that makes every window, ceil-mode ones included, in-bounds."""
    out, hi = [], []
    for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation):
        o = pool_out_size(n, k, s, p, d, ceil_mode)
        out.append(o)
        last_end = (o - 1) * s + d * (k - 1) + 1  # one past the last window's last tap (padded)
        hi.append(max(p, last_end - n - p))
    return PoolGeometry(tuple(out), tuple(padding), tuple(hi))


def pad_index(size: int, lo: int, hi: int, mode: str) -> list[int]:
    """Source index in `[0, size)` of each position of the padded axis, for a non-zero padding mode.

    'reflect' mirrors without repeating the edge, 'replicate' repeats the edge, 'circular'
    wraps around, exactly as `torch.nn.functional.pad`.
    """
    positions = range(-lo, size + hi)
    if mode == "replicate":
        return [min(max(i, 0), size - 1) for i in positions]
    if mode == "circular":
        return [i % size for i in positions]
    if mode == "reflect":
        period = 2 * (size - 1)
        out = []
        for i in positions:
            j = i % period if period else 0
            out.append(j if j < size else period - j)
        return out
    raise ValueError(
        f"padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular', got {mode!r}"
    )
