"""Parity cases of the conv family: Conv1d, Conv2d, Conv3d.

Rows cover every argument torch takes (stride, padding as ints / 'same' / 'valid', dilation,
groups up to depthwise, bias, each padding_mode) and the shapes the kernels dispatch on (1x1,
kernel == input, batch >= 8 with short output rows: the batch-last im2col). Reductions stay
short (N * prod(out) <= ~200) so that float32 parity is not torch's own rounding. Names read
`<layer>-<what>`.
"""

from __future__ import annotations

from scratch.verify.parity import Case, ErrorCase, randn, strided, transposed

X2 = randn(2, 2, 4, 5)
REFLECT, REPLICATE, CIRCULAR = ({"padding_mode": m} for m in ("reflect", "replicate", "circular"))
SAME, P1 = {"padding": "same"}, {"padding": 1}

_CONV2D = [
    Case("conv2d-k3", "Conv2d", (X2,), (2, 3, 3)),
    Case("conv2d-k3-p1", "Conv2d", (X2,), (2, 3, 3), {"padding": 1}),
    Case("conv2d-stride2", "Conv2d", (randn(1, 2, 7, 6),), (2, 3, 3), {"stride": 2, "padding": 1}),
    Case("conv2d-stride-gt-kernel", "Conv2d", (randn(1, 2, 7, 7),), (2, 3, 2), {"stride": 3}),
    Case("conv2d-nonsquare", "Conv2d", (randn(2, 2, 6, 4),), (2, 3, (3, 2), (2, 1), (1, 0))),
    Case("conv2d-dilation", "Conv2d", (X2,), (2, 3, (3, 2)), {"dilation": (2, 3), "padding": 2}),
    Case("conv2d-groups2", "Conv2d", (randn(2, 4, 3, 4),), (4, 6, 3), {"groups": 2, "padding": 1}),
    Case("conv2d-depthwise", "Conv2d", (randn(2, 4, 4, 4),), (4, 4, 3), {"groups": 4}),
    Case("conv2d-depthwise-multiplier", "Conv2d", (randn(1, 3, 5, 4),), (3, 6, 3), {"groups": 3}),
    Case("conv2d-nobias", "Conv2d", (X2,), (2, 3, 3), {"bias": False}),
    Case("conv2d-1x1", "Conv2d", (randn(2, 4, 3, 3),), (4, 3, 1)),
    Case("conv2d-kernel-is-input", "Conv2d", (randn(2, 2, 4, 3),), (2, 3, (4, 3))),
    Case("conv2d-batch1", "Conv2d", (randn(1, 2, 5, 4),), (2, 3, 3), {"padding": 1}),
    Case("conv2d-unbatched", "Conv2d", (randn(2, 5, 4),), (2, 3, 3), {"padding": 1}),
    Case("conv2d-same-even-kernel", "Conv2d", (X2,), (2, 3, (4, 2)), {"padding": "same"}),
    Case("conv2d-same-dilated", "Conv2d", (X2,), (2, 3, (2, 3)), SAME | {"dilation": 2}),
    Case("conv2d-valid", "Conv2d", (X2,), (2, 3, 3), {"padding": "valid"}),
    Case("conv2d-reflect", "Conv2d", (X2,), (2, 3, 3), {"padding": (2, 1), **REFLECT}),
    Case("conv2d-replicate", "Conv2d", (X2,), (2, 3, 3), {"padding": 2, **REPLICATE}),
    Case("conv2d-circular", "Conv2d", (X2,), (2, 3, 3), {"padding": (1, 2), **CIRCULAR}),
    Case("conv2d-reflect-same-even", "Conv2d", (X2,), (2, 3, (4, 3)), SAME | REFLECT),
    Case("conv2d-circular-unbatched", "Conv2d", (randn(2, 4, 5),), (2, 2, 3), P1 | CIRCULAR),
    Case("conv2d-noncontiguous", "Conv2d", (randn(2, 2, 4, 5, view=transposed),), (2, 3, 3)),
    Case("conv2d-strided-input", "Conv2d", (randn(2, 2, 5, 8, view=strided),), (2, 3, 3)),
    Case("conv2d-batch-last", "Conv2d", (randn(8, 1, 3, 10),), (1, 2, 3)),
    Case("conv2d-batch-last-p1-groups", "Conv2d", (randn(8, 2, 1, 8),), (2, 4, 3),
         {"padding": 1, "groups": 2}),
    Case("conv2d-empty-batch", "Conv2d", (randn(0, 3, 6, 5),), (3, 4, 3), gradcheck=False),
]  # fmt: skip

_CONV1D_3D = [
    Case("conv1d-k3", "Conv1d", (randn(2, 3, 9),), (3, 4, 3), {"padding": 1}),
    Case("conv1d-stride-dilation-groups", "Conv1d", (randn(2, 4, 11),), (4, 6, 3, 2, 0, 2, 2)),
    Case("conv1d-same-even", "Conv1d", (randn(2, 3, 9),), (3, 4, 4), {"padding": "same"}),
    Case("conv1d-reflect", "Conv1d", (randn(2, 3, 9),), (3, 4, 4), {"padding": 3, **REFLECT}),
    Case("conv1d-unbatched", "Conv1d", (randn(3, 10),), (3, 2, 3)),
    Case("conv1d-nobias", "Conv1d", (randn(2, 3, 8),), (3, 4, 3), {"bias": False}),
    Case("conv3d-k3", "Conv3d", (randn(2, 1, 3, 4, 4),), (1, 2, 3), {"padding": (1, 0, 1)}),
    Case("conv3d-stride-dilation", "Conv3d", (randn(1, 2, 4, 5, 4),), (2, 2, 2),
         {"stride": (2, 1, 2), "dilation": (1, 2, 1)}),
    Case("conv3d-replicate-groups", "Conv3d", (randn(1, 2, 3, 4, 3),), (2, 2, (3, 3, 2)),
         {"padding": (1, 2, 1), "groups": 2, **REPLICATE}),
    Case("conv3d-circular", "Conv3d", (randn(1, 2, 3, 3, 4),), (2, 2, 2), P1 | CIRCULAR),
    Case("conv3d-same-even", "Conv3d", (randn(1, 2, 3, 3, 4),), (2, 2, (2, 3, 2)),
         {"padding": "same"}),
    Case("conv3d-unbatched", "Conv3d", (randn(2, 3, 4, 3),), (2, 2, 2)),
    # >= 32 input channels per group: the kernels' wide-channel paths (several taps per GEMM)
    Case("conv1d-wide-channels", "Conv1d", (randn(2, 32, 9),), (32, 4, 3), {"padding": 1}),
    Case("conv1d-wide-channels-groups", "Conv1d", (randn(1, 64, 7),), (64, 4, 3), {"groups": 2}),
    Case("conv3d-wide-channels", "Conv3d", (randn(1, 32, 3, 4, 3),), (32, 2, 2), gradcheck=False),
    # padding='same' with kernel 2: one-sided padding, through each non-zero padding_mode
    *(Case(f"conv{d}d-same-k2-{mode}", f"Conv{d}d", (randn(2, 2, *(5, 4, 3)[:d]),), (2, 3, 2),
           {"padding": "same", "padding_mode": mode}) for d in (1, 2)
      for mode in ("reflect", "replicate", "circular")),
    # an empty batch takes dilation 0 in torch (in_channels=0: tests/test_bad_input.py, since
    # torch's empty (N, 0, *out) there is no rule a user's own layer should be graded on)
    Case("conv2d-empty-batch-dilation-0", "Conv2d", (randn(0, 2, 5, 5),), (2, 3, 3),
         {"dilation": 0}, gradcheck=False),
]  # fmt: skip

CASES = _CONV2D + _CONV1D_3D

X4 = randn(1, 3, 5, 5)

ERROR_CASES = [
    ErrorCase("conv2d-input-channels-mismatch", "Conv2d", (randn(2, 4, 6, 6),), (3, 4, 3)),
    ErrorCase("conv2d-groups-input-mismatch", "Conv2d", (X4,), (4, 4, 3, 1, 0, 1, 2)),
    ErrorCase("conv2d-kernel-larger-than-input", "Conv2d", (randn(1, 3, 4, 4),), (3, 4, 5)),
    ErrorCase("conv2d-dilated-kernel-too-large", "Conv2d", (X4,), (3, 4, 3), {"dilation": 3}),
    ErrorCase("conv2d-empty-spatial", "Conv2d", (randn(1, 3, 0, 5),), (3, 4, 3)),
    ErrorCase("conv2d-stride-zero", "Conv2d", (X4,), (3, 4, 3), {"stride": 0}),
    ErrorCase("conv2d-dilation-zero", "Conv2d", (X4,), (3, 4, 3), {"dilation": 0}),
    ErrorCase("conv2d-negative-padding", "Conv2d", (X4,), (3, 4, 3), {"padding": -1}),
    ErrorCase("conv2d-2d-input", "Conv2d", (randn(5, 5),), (3, 4, 3)),
    ErrorCase("conv2d-5d-input", "Conv2d", (randn(1, 1, 3, 5, 5),), (3, 4, 3)),
    ErrorCase("conv1d-4d-input", "Conv1d", (X4,), (3, 4, 3)),
    ErrorCase("conv3d-3d-input", "Conv3d", (randn(3, 5, 5),), (3, 4, 3)),
    ErrorCase("conv2d-reflect-padding-too-large", "Conv2d", (randn(1, 3, 3, 3),), (3, 4, 3),
              {"padding": 3, **REFLECT}),
    ErrorCase("conv2d-circular-wraps-twice", "Conv2d", (randn(1, 3, 3, 3),), (3, 4, 3),
              {"padding": 4, **CIRCULAR}),
    ErrorCase("conv2d-same-strided", "Conv2d", (X4,), (3, 4, 3), {"padding": "same", "stride": 2}),
    ErrorCase("conv2d-groups-not-dividing", "Conv2d", (randn(1, 4, 5, 5),), (4, 6, 3),
              {"groups": 4}),
    ErrorCase("conv2d-bad-padding-mode", "Conv2d", (X4,), (3, 4, 3), {"padding_mode": "wrap"}),
    ErrorCase("conv2d-kernel-0", "Conv2d", (X4,), (3, 4, 0)),
    ErrorCase("conv1d-kernel-0-empty-batch", "Conv1d", (randn(0, 3, 5),), (3, 4, 0)),
    ErrorCase("conv1d-empty-plane-padded", "Conv1d", (randn(1, 2, 0),), (2, 2, 1), {"padding": 1}),
    ErrorCase("conv3d-empty-spatial", "Conv3d", (randn(1, 2, 3, 0, 4),), (2, 2, 1)),
    ErrorCase("conv2d-reflect-no-channels", "Conv2d", (randn(1, 0, 4, 4),), (0, 2, 3),
              {"padding": 1, **REFLECT}),
]  # fmt: skip
