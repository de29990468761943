"""Window arithmetic shared by every sliding-window kernel (conv, pooling), in any number of dims.

Pure integer arithmetic, no arrays: output sizes, padding amounts and the index maps of the
non-zero padding modes, all with torch's formulas, so forward and backward of both backends
agree on the geometry by construction.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple

from scratch.kernels import Ints, Pads


def same_padding(kernel: Ints, dilation: Ints) -> Pads:
    """padding='same': `(lo, hi)` per dim; an odd total puts the extra one at the end, as torch."""
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
    spatial: Ints,
    kernel: Ints,
    stride: Ints,
    padding: Ints,
    dilation: Ints,
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


def tap_slices(kernel: Ints, stride: Ints, dilation: Ints, out: Ints) -> list[tuple]:
    """Index of each kernel tap, row-major: `x_padded[index]` is that tap of every window.

    Tap `(k_1, ..)` of window `(o_1, ..)` is `x_padded[..., o_1 * stride_1 + k_1 * dilation_1, ..]`
    (as in `window_view`), here as basic slices: views that can also be written through.
    """
    per_dim = [
        [slice(k * dl, k * dl + s * (o - 1) + 1, s) for k in range(kern)]
        for kern, s, dl, o in zip(kernel, stride, dilation, out)
    ]
    return [(Ellipsis, *index) for index in itertools.product(*per_dim)]


def tap_offsets(kernel: Ints, steps: Ints) -> list[int]:
    """sum_d k_d * steps_d for each tap `(k_1, ..)`, in row-major tap order."""
    return [
        sum(k * st for k, st in zip(ks, steps)) for ks in itertools.product(*map(range, kernel))
    ]


def window_starts(stride: int, lo: int, out: int) -> list[int]:
    """Per window along one dim: its first position in unpadded coordinates (< 0 in the padding)."""
    return [o * stride - lo for o in range(out)]


def first_real_taps(kernel: Ints, stride: Ints, lo: Ints, dilation: Ints, out: Ints) -> list:
    """Per dim, per window: k_d * kernel_stride_d for its first tap k_d inside the unpadded input.

    Summed over the dims (an outer sum), the row-major tap where torch's argmax starts.
    """
    parts = []
    for kern, s, a, dl, o, ks in zip(kernel, stride, lo, dilation, out, plane_strides(kernel)):
        # ceil(-start / dilation) for a window starting in the padding, else 0
        parts.append([min(kern - 1, max(0, -(st // dl))) * ks for st in window_starts(s, a, o)])
    return parts


def hollow_windows(
    spatial: Ints, kernel: Ints, stride: Ints, lo: Ints, dilation: Ints, out: Ints
) -> list[list[bool]]:
    """Per dim, per window: whether none of its taps lies in the unpadded input.

    Possible only with dilation (taps that skip the input). A window hollow along any dim pools
    padding alone: torch returns -inf and an index beyond the input (where its own backward
    writes out of bounds); scratch gives it no gradient.
    """
    hollow = []
    for n, kern, s, a, dl, o in zip(spatial, kernel, stride, lo, dilation, out):
        firsts = [max(0, -(st // dl)) for st in window_starts(s, a, o)]  # first tap >= 0
        hollow.append(
            [k >= kern or st + k * dl >= n for k, st in zip(firsts, window_starts(s, a, o))]
        )
    return hollow


def flat_index_parts(
    spatial: Ints, kernel: Ints, stride: Ints, lo: Ints, dilation: Ints, out: Ints
) -> tuple[list, list[int]]:
    """Flat index into an unpadded plane of tap t of window o: sum_d bases[d][o_d] + offsets[t].

    The position along dim d is start_d(o_d) + k_d * dilation_d.
    """
    strides = plane_strides(spatial)
    bases = [
        [st * ps for st in window_starts(s, a, o)] for s, a, o, ps in zip(stride, lo, out, strides)
    ]
    return bases, tap_offsets(kernel, [dl * ps for dl, ps in zip(dilation, strides)])


def avg_pool_counts(
    size: int, kernel: int, stride: int, padding: int, out: int, count_include_pad: bool
) -> list[int]:
    """Per window along one dim: its factor of torch's avg_pool divisor.

    With padding counted: the window clipped to the padded input (a ceil-mode window hanging past
    the padding counts less); without: the number of real elements it covers.
    """
    counts = []
    for start in window_starts(stride, padding, out):
        end = min(start + kernel, size + padding)
        counts.append(end - start if count_include_pad else min(end, size) - max(start, 0))
    return counts


def adaptive_bounds(size: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive pooling windows along one dim: [floor(i*size/out), ceil((i+1)*size/out))."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


class Step(NamedTuple):
    """One step along one dim of a windowed sum in torch's order: the position to read for
    each target along that dim (a window, or an input element) and whether it has the step."""

    index: tuple[int, ...]
    valid: tuple[bool, ...]

    @property
    def evenly(self) -> slice | None:
        """The positions as a slice where they are evenly spaced (equal windows), else None."""
        first, count = self.index[0] if self.index else 0, len(self.index)
        step = self.index[1] - first if count > 1 else 1
        if step > 0 and self.index == tuple(range(first, first + step * count, step)):
            return slice(first, first + step * (count - 1) + 1, step)
        return None


@functools.lru_cache(maxsize=256)
def adaptive_window_taps(
    spatial: tuple[int, ...], out: tuple[int, ...]
) -> tuple[tuple[Step, ...], ...]:
    """Per dim, the taps of every adaptive window along it: tap k reads member start + k of
    each window (clamped into it), valid where the window is that long. torch's CPU forward
    sums a window's taps in row-major order over the dims' steps. Made once per geometry."""
    per_dim = []
    for n, o in zip(spatial, out):
        bounds = adaptive_bounds(n, o)
        longest = max((hi - lo for lo, hi in bounds), default=0)
        per_dim.append(
            tuple(
                Step(
                    tuple(min(lo + k, hi - 1) for lo, hi in bounds),
                    tuple(k < hi - lo for lo, hi in bounds),
                )
                for k in range(longest)
            )
        )
    return tuple(per_dim)


@functools.lru_cache(maxsize=256)
def adaptive_input_windows(
    spatial: tuple[int, ...], out: tuple[int, ...]
) -> tuple[tuple[Step, ...], ...]:
    """Per dim, the adaptive windows holding each input position along it: step j reads the
    j-th window holding each position (clamped to its last), valid where there are that many.
    torch's CPU backward adds the windows into grad_input in row-major order over the dims'
    steps. The windows holding a position are consecutive: starts and ends never decrease.
    Made once per geometry."""
    per_dim = []
    for n, o in zip(spatial, out):
        bounds = adaptive_bounds(n, o)
        holding = [[w for w, (lo, hi) in enumerate(bounds) if lo <= i < hi] for i in range(n)]
        most = max(map(len, holding), default=0)
        per_dim.append(
            tuple(
                Step(
                    tuple(h[min(j, len(h) - 1)] for h in holding),
                    tuple(j < len(h) for h in holding),
                )
                for j in range(most)
            )
        )
    return tuple(per_dim)


def disjoint_blocks(spatial: Ints, out: Ints) -> tuple[int, ...] | None:
    """(o_1, L_1, o_2, L_2, ...) where every dim splits into equal disjoint adaptive windows
    (size = o * L, o > 0): each dim as window and tap. None where one does not."""
    if not all(o > 0 and n % o == 0 for n, o in zip(spatial, out)):
        return None
    return tuple(v for n, o in zip(spatial, out) for v in (o, n // o))


def adaptive_lengths(spatial: Ints, out: Ints) -> list[tuple[int, ...]]:
    """Per dim, the length of each adaptive window: torch divides by them one dim at a time."""
    return [tuple(hi - lo for lo, hi in adaptive_bounds(n, o)) for n, o in zip(spatial, out)]


def plane_strides(spatial: Ints) -> list[int]:
    """Row-major element strides of one (N, C) plane: flat index = sum_d position_d * stride_d."""
    return [math.prod(spatial[d + 1 :]) for d in range(len(spatial))]


def window_layout(
    shape: Ints,
    strides: Ints,
    kernel: Ints,
    stride: Ints,
    dilation: Ints,
    out: Ints,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shape and strides of the window view `(..., *out, *kernel)` over the last dims of an array.

    Element `[..., o_1.., k_1..]` is `x[..., o_1 * stride_1 + k_1 * dilation_1, ..]`; `strides`
    are in the backend's unit (bytes for NumPy, elements for torch). Raises ValueError if a
    window would leave the array.
    """
    d = len(kernel)
    for n, o, k, s, dl in zip(shape[-d:], out, kernel, stride, dilation):
        if (o - 1) * s + (k - 1) * dl >= n:
            raise ValueError(f"window out of bounds: size {n}, out {o}, kernel {k}, stride {s}")
    spatial = strides[-d:]
    view_shape = (*shape[:-d], *out, *kernel)
    view_strides = (
        *strides[:-d],
        *(st * s for st, s in zip(spatial, stride)),
        *(st * dl for st, dl in zip(spatial, dilation)),
    )
    return tuple(view_shape), tuple(view_strides)
