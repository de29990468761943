"""torch's CPU `sum` in NumPy, bit for bit: the order in which it adds, for any strides.

A sum of float32 terms depends on the order of its additions (1e30 + 1 - 1e30 is 0 one way,
1 another), and torch's order is not NumPy's pairwise one. torch's CPU sum (`cascade_sum` in
aten/src/ATen/native/cpu/SumKernel.cpp, run through a TensorIterator) adds in three orders:

  cascade   a running sum over chunks of S >= 16 terms, whose sums are summed the same way
            over up to four levels, the levels added last (`multi_row_sum`);
  row       the terms split round-robin over 4 cascades, the leftover terms added to the
            first, then the four added in order (`row_sum`);
  lanes     a contiguous row of at least one SIMD vector: vectors of V lanes summed lane-wise
            in the row order, then 0 + the leftover terms + each lane in turn.

Which order a sum gets depends on the iterator's layout of the reduction: its dims sorted
(reduced first, then by stride) and merged where contiguous, as `TensorIteratorBase`'s
`reorder_dimensions` and `coalesce_dimensions` do; then the first two dims are the kernel's
(`size0`, `size1`) and the rest loop outside, each adding into the output in turn. V is the
width of the SIMD vector torch's sum runs with (`_vector_bytes`). With more than one thread
torch splits a large sum with a single output between them, in another order; the tests run
one (each output's own sum, as here, is never split).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from numpy.lib.stride_tricks import as_strided

__all__ = ["as_torch_float", "torch_sum"]


@functools.cache
def _vector_bytes() -> int:
    """Bytes of the SIMD vector torch's sum kernel runs with here, asked of torch itself.

    Not the CPU capability torch reports: its sum kernel is registered for AVX2, which runs
    on AVX-512 machines too (32 bytes: torch 2.14 on an AMD EPYC reporting AVX512, measured
    here), and NEON's vectors hold 16. So: the width whose order reproduces torch's sums of a
    probe, once per process.
    """
    probe = np.random.default_rng(0).standard_normal((8, 67)) * np.logspace(-6, 6, 67)
    probe = probe.astype(np.float32)
    want = torch.from_numpy(probe).sum(1, keepdim=True).numpy()
    for width in (32, 64, 16):
        if np.array_equal(_lanes(probe, width // 4), want):
            return width
    return 32  # none: an order we do not know; sums still correct to rounding


def torch_sum(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """torch.sum(x, axes, keepdim=True) on the CPU, the same bits: float32 or float64 `x` of any
    strides (float16 is summed by torch as a float32 copy: convert it first, `as_torch_float`).
    """
    reduced = {a % x.ndim for a in axes}
    out = np.zeros([1 if a in reduced else n for a, n in enumerate(x.shape)], x.dtype)
    if x.size == 0:
        return out
    dims = _iterator_dims(x, out, reduced) + [(1, 0, 0)]  # at least the kernel's two dims
    # numpy views over the iterator's dims, slowest first: dim 0 is the last axis
    shape = [n for n, _, _ in reversed(dims)]
    values = as_strided(x, shape, [s * x.itemsize for _, s, _ in reversed(dims)])
    target = as_strided(out, shape, [o * x.itemsize for _, _, o in reversed(dims)])
    if dims[0][2] != 0 and dims[1][2] == 0:  # the kernel moves the reduction to its first dim
        values, target = values.swapaxes(-1, -2), target.swapaxes(-1, -2)
        dims[0], dims[1] = dims[1], dims[0]
    if dims[0][2] != 0:  # nothing reduces (each reduced dim has size 1): 0 + the term
        np.add(x, x.dtype.type(0), out=out)
        return out
    (_, s0, _), (n1, s1, _) = dims[0], dims[1]
    sums = _kernel_rows(values, s0, s1, n1, x.dtype)  # one per kernel row: dim 0 summed
    # Each sum adds into its output slot in the iterator's order, dim 1 fastest: the dims
    # from 1 on whose output stride is 0 are summed in that order, the others index outputs.
    rest = range(1, len(dims))
    keep = [sums.ndim - k for k in reversed(rest) if dims[k][2] != 0]  # numpy axes
    summed = [sums.ndim - k for k in reversed(rest) if dims[k][2] == 0]
    arranged = sums.transpose(keep + summed)
    kept = arranged.shape[: len(keep)]
    result = _sequential(arranged.reshape(*kept, math.prod(arranged.shape[len(keep) :])), -1)
    slots = target[..., 0].transpose(keep + summed)[(..., *[0] * len(summed))]
    np.copyto(slots, result)
    return out


def as_torch_float(x: np.ndarray) -> np.ndarray:
    """x in float32 as torch's `.to(float32)` lays it out: the same strides when x is dense and
    non-overlapping, else C-contiguous."""
    return x.astype(np.float32, order="K" if _is_dense(x) else "C")


def _is_dense(x: np.ndarray) -> bool:
    """Whether x's elements fill its memory without holes or overlap, in some axis order."""
    expected = x.itemsize
    for s, n in sorted((s, n) for n, s in zip(x.shape, x.strides) if n > 1):
        if s != expected:
            return False
        expected *= n
    return True


def _iterator_dims(x: np.ndarray, out: np.ndarray, reduced: set) -> list[tuple[int, int, int]]:
    """(size, input stride, output stride) per dim, in elements, fastest first: the order and
    merging of `TensorIteratorBase` for a reduction of x into out (the output's reduced dims
    have stride 0, its first operand)."""
    shape = x.shape
    in_st = [s // x.itemsize for s in x.strides]
    out_st = [
        0 if (a in reduced and n != 1) else s // out.itemsize
        for a, (n, s) in enumerate(zip(shape, out.strides))
    ]

    def should_swap(d0: int, d1: int) -> int:
        if (out_st[d0] == 0) != (out_st[d1] == 0):  # reduced dims to the front
            return 1 if out_st[d1] == 0 else -1
        for a, b in ((out_st[d0], out_st[d1]), (in_st[d0], in_st[d1])):
            if a == 0 or b == 0:
                continue
            if a != b:
                return -1 if a < b else 1
        return 0

    perm = list(range(len(shape)))[::-1]
    for i in range(1, len(perm)):  # TensorIterator's insertion sort, ties kept
        d1 = i
        for d0 in range(i - 1, -1, -1):
            c = should_swap(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    dims = [[shape[d], in_st[d], out_st[d]] for d in perm]
    merged = [dims[0]]
    for n, s, o in dims[1:]:
        last = merged[-1]
        if last[0] == 1 or n == 1 or (last[0] * last[1] == s and last[0] * last[2] == o):
            if last[0] == 1:
                last[1], last[2] = s, o
            last[0] *= n
        else:
            merged.append([n, s, o])
    return [tuple(d) for d in merged]


def _kernel_rows(values: np.ndarray, s0: int, s1: int, n1: int, dtype) -> np.ndarray:
    """The kernel's sum of each row (last axis: size0 terms of stride s0; rows j along the axis
    before it, stride s1) in the order `cascade_sum` picks for these strides."""
    v = _vector_bytes() // dtype.itemsize  # lanes: Vectorized<scalar_t>::size()
    if s0 == 1 and values.shape[-1] >= v:  # contiguous rows: lane-wise by vectors
        return _lanes(values, v)
    if s1 == 1 and n1 >= v:  # contiguous across rows: 4 vectors of rows cascade together
        return _by_row_group(values, (n1 // (4 * v)) * (4 * v))
    if s0 < s1:
        return _row(values)
    return _by_row_group(values, (n1 // 4) * 4)


def _by_row_group(values: np.ndarray, cascaded: int) -> np.ndarray:
    """The first `cascaded` rows summed by one cascade each, the rest by `_row`."""
    head = _cascade(values[..., :cascaded, :])
    tail = _row(values[..., cascaded:, :])
    return np.concatenate([head, tail], axis=-1)


def _sequential(a: np.ndarray, axis: int) -> np.ndarray:
    """0 + a[0] + a[1] + ... in that order along `axis`: a few terms one add each, many by
    add.accumulate, a running sum (its last element)."""
    a = np.moveaxis(a, axis, -1)
    if a.shape[-1] > 16:
        return a.cumsum(axis=-1)[..., -1] + a.dtype.type(0)
    acc = np.zeros(a.shape[:-1], a.dtype)
    for i in range(a.shape[-1]):
        acc += a[..., i]
    return acc


def _cascade(values: np.ndarray) -> np.ndarray:
    """`multi_row_sum` of each row of the last axis: chunks of S terms summed, S chunk sums
    summed, S of those; the partial levels added to the leftover terms' sum last."""
    size = values.shape[-1]
    step = 1 << max(4, _ceil_log2(size) // 4)
    if size < step:  # one chunk, not full: a running sum
        return _sequential(values, axis=-1)
    level, rest = values, []
    for _ in range(3):  # levels 0..2: full groups of `step` go up a level, the rest wait
        full = (level.shape[-1] // step) * step
        rest.append(_sequential(level[..., full:], axis=-1))
        grouped = level[..., :full].reshape(*level.shape[:-1], full // step, step)
        level = _sequential(grouped, axis=-1)
    acc = rest[0]
    for partial in (rest[1], rest[2], _sequential(level, axis=-1)):
        acc = acc + partial
    return acc


def _ceil_log2(n: int) -> int:
    """c10's utils::CeilLog2: 1 up to 2, else ceil(log2(n))."""
    return 1 if n <= 2 else (n - 1).bit_length()


def _row(values: np.ndarray) -> np.ndarray:
    """`row_sum`: terms i = 4q + k go to cascade k, the leftover to cascade 0, then 0+1+2+3."""
    size = values.shape[-1]
    quads = size // 4
    split = values[..., : quads * 4].reshape(*values.shape[:-1], quads, 4)
    partial = _cascade(np.moveaxis(split, -1, -2))  # (..., 4)
    first = partial[..., 0]
    for i in range(quads * 4, size):  # at most 3 leftover terms
        first = first + values[..., i]
    for k in range(1, 4):
        first = first + partial[..., k]
    return first


def _lanes(values: np.ndarray, v: int) -> np.ndarray:
    """`vectorized_inner_sum`: vectors of v lanes `_row`-summed lane-wise, then 0 + the
    leftover terms in order + each lane in order."""
    size = values.shape[-1]
    full = (size // v) * v
    vectors = values[..., :full].reshape(*values.shape[:-1], size // v, v)
    lanes = _row(np.moveaxis(vectors, -1, -2))  # (..., v)
    tail = np.concatenate([values[..., full:], lanes], axis=-1)
    return _sequential(tail, axis=-1)
