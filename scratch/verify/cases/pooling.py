"""Parity cases of the pooling family: MaxPool, AvgPool, AdaptiveAvgPool in 1-d, 2-d and 3-d.

Rows at ties (zeros, repeated integers, zeros after a ReLU) and at NaN check that the gradient
goes where torch's argmax puts it; they skip gradcheck, whose finite differences are undefined
there. Names read `<layer>-<what>`.
"""

from __future__ import annotations

import math

import torch

from scratch.verify.parity import (
    Case,
    ErrorCase,
    Input,
    randn,
    strided,
    transposed,
    uniform,
    values,
)


def ints(*shape: int, high: int = 3) -> Input:
    """Repeated small integers: many exact ties inside each window."""
    return Input(lambda g, dt: torch.randint(high, shape, generator=g).to(dt))


def zeros(*shape: int) -> Input:
    return Input(lambda g, dt: torch.zeros(shape, dtype=dt))


def relu(*shape: int) -> Input:
    """randn clipped at 0, as after a ReLU: windows of tied zeros."""
    return Input(lambda g, dt: torch.randn(shape, generator=g, dtype=dt).clamp(min=0))


NAN = [[[[1.0, math.nan, 2.0, -1.0], [math.nan, 0.5, 3.0, math.nan], [0.0, -math.inf, 1.0, 2.0]]]]
INDICES = {"return_indices": True}
CEIL, NOPAD = {"ceil_mode": True}, {"count_include_pad": False}
X = randn(2, 3, 8, 8)

# nn.MaxPool1d/2d/3d: F.max_pool1d, max_pool2d, max_pool3d (kernels max_pool_forward/backward)
_MAX = [
    Case("maxpool2d-k2", "MaxPool2d", (X,), (2,)),
    Case("maxpool2d-k3-s2-p1", "MaxPool2d", (X,), (3, 2, 1)),
    Case("maxpool2d-k3-s2-p1-ceil", "MaxPool2d", (X,), (3, 2, 1), CEIL),
    Case("maxpool2d-k2-s2-p1-ceil-drops-last", "MaxPool2d", (randn(2, 3, 5, 5),), (2, 2, 1), CEIL),
    Case("maxpool2d-k2-s3", "MaxPool2d", (randn(2, 3, 9, 10),), (2, 3)),
    Case("maxpool2d-k3-d2", "MaxPool2d", (randn(2, 3, 10, 9),), (3, 1, 1, 2)),
    Case("maxpool2d-k2x3-s1x2-nonsquare", "MaxPool2d", (randn(2, 3, 7, 9),), ((2, 3), (1, 2))),
    Case("maxpool2d-indices", "MaxPool2d", (X,), (3, 2, 1), INDICES),
    Case(
        "maxpool2d-ties-zeros",
        "MaxPool2d",
        (zeros(2, 3, 6, 6),),
        (3, 1, 1),
        INDICES,
        gradcheck=False,
    ),
    Case("maxpool2d-ties-ints", "MaxPool2d", (ints(2, 3, 9, 9),), (3, 2), INDICES, gradcheck=False),
    Case("maxpool2d-ties-relu", "MaxPool2d", (relu(2, 3, 8, 8),), (2, 1), INDICES, gradcheck=False),
    Case("maxpool2d-nan", "MaxPool2d", (values(NAN),), (2, 1, 1), INDICES, gradcheck=False),
    Case("maxpool2d-negative-p1", "MaxPool2d", (uniform(2, 3, 6, 6, low=-2, high=-1),), (3, 2, 1)),
    Case("maxpool2d-kernel-eq-input", "MaxPool2d", (randn(2, 3, 5, 7),), ((5, 7),)),
    Case("maxpool2d-batch1", "MaxPool2d", (randn(1, 4, 8, 8),), (2,)),
    Case("maxpool2d-unbatched", "MaxPool2d", (randn(3, 8, 8),), (3, 2, 1), INDICES),
    Case("maxpool2d-noncontiguous", "MaxPool2d", (randn(2, 3, 9, 8, view=transposed),), (3, 2)),
    Case("maxpool2d-strided", "MaxPool2d", (randn(2, 3, 8, 16, view=strided),), (2,)),
    Case("maxpool2d-empty-batch", "MaxPool2d", (randn(0, 3, 8, 8),), (2,), gradcheck=False),
    Case("maxpool1d-k2", "MaxPool1d", (randn(2, 3, 10),), (2,)),
    Case("maxpool1d-k3-s2-p1-d2-ceil", "MaxPool1d", (randn(2, 3, 17),), (3, 2, 1, 2), CEIL),
    Case("maxpool1d-unbatched-indices", "MaxPool1d", (randn(3, 9),), (3, 2, 1), INDICES),
    Case("maxpool3d-k2", "MaxPool3d", (randn(2, 2, 4, 6, 6),), (2,)),
    Case("maxpool3d-k3-s2-p1-ceil", "MaxPool3d", (randn(1, 2, 7, 6, 5),), (3, 2, 1), CEIL),
    Case("maxpool3d-d2-indices", "MaxPool3d", (randn(1, 2, 6, 7, 6),), (2, 1, 0, 2), INDICES),
    Case("maxpool3d-unbatched", "MaxPool3d", (randn(2, 4, 6, 6),), (2,)),
]

# nn.AvgPool1d/2d/3d: F.avg_pool1d, avg_pool2d, avg_pool3d
_AVG = [
    Case("avgpool2d-k2", "AvgPool2d", (X,), (2,)),
    Case("avgpool2d-k3-s2-p1", "AvgPool2d", (X,), (3, 2, 1)),
    Case("avgpool2d-k3-s2-p1-nopad", "AvgPool2d", (X,), (3, 2, 1), NOPAD),
    # the last ceil-mode window along H hangs past the padding: it counts less with padding
    Case("avgpool2d-k3-s2-p1-ceil", "AvgPool2d", (randn(2, 3, 6, 7),), (3, 2, 1), CEIL),
    Case(
        "avgpool2d-k3-s2-p1-ceil-nopad", "AvgPool2d", (randn(2, 3, 6, 7),), (3, 2, 1), CEIL | NOPAD
    ),
    Case("avgpool2d-k2-s2-p1-ceil-drops-last", "AvgPool2d", (randn(2, 3, 5, 5),), (2, 2, 1), CEIL),
    Case("avgpool2d-divisor", "AvgPool2d", (X,), (3, 2, 1), {"divisor_override": 5}),
    Case("avgpool2d-divisor-ceil-nopad", "AvgPool2d", (X,), (3, 2, 1, True, False, 4)),
    Case(
        "avgpool2d-k2x3-s3x1-nonsquare", "AvgPool2d", (randn(2, 3, 8, 9),), ((2, 3), (3, 1), (1, 0))
    ),
    Case("avgpool2d-kernel-eq-input", "AvgPool2d", (randn(2, 3, 5, 7),), ((5, 7),)),
    Case("avgpool2d-batch1", "AvgPool2d", (randn(1, 4, 8, 8),), (2,)),
    Case("avgpool2d-unbatched", "AvgPool2d", (randn(3, 7, 7),), (3, 2, 1)),
    Case("avgpool2d-noncontiguous", "AvgPool2d", (randn(2, 3, 9, 8, view=transposed),), (3, 2, 1)),
    Case("avgpool1d-k3-s2-p1-ceil", "AvgPool1d", (randn(2, 3, 10),), (3, 2, 1), CEIL),
    Case("avgpool1d-k3-s2-p1-nopad", "AvgPool1d", (randn(2, 3, 10),), (3, 2, 1), NOPAD),
    Case("avgpool1d-unbatched", "AvgPool1d", (randn(3, 9),), (2,)),
    Case("avgpool3d-k2", "AvgPool3d", (randn(2, 2, 4, 6, 6),), (2,)),
    Case(
        "avgpool3d-k3-s2-p1-ceil-nopad",
        "AvgPool3d",
        (randn(1, 2, 6, 7, 5),),
        (3, 2, 1),
        CEIL | NOPAD,
    ),
    Case(
        "avgpool3d-divisor-unbatched",
        "AvgPool3d",
        (randn(2, 4, 5, 6),),
        (2, 1, 1),
        {"divisor_override": 3},
    ),
]

# nn.AdaptiveAvgPool1d/2d/3d: F.adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d
_ADAPTIVE = [
    Case("adaptiveavgpool2d-dividing", "AdaptiveAvgPool2d", (X,), ((4, 4),)),
    Case("adaptiveavgpool2d-not-dividing", "AdaptiveAvgPool2d", (randn(2, 3, 9, 7),), ((4, 3),)),
    Case("adaptiveavgpool2d-larger", "AdaptiveAvgPool2d", (randn(2, 3, 3, 2),), ((5, 7),)),
    Case("adaptiveavgpool2d-global", "AdaptiveAvgPool2d", (randn(2, 3, 7, 6),), (1,)),
    Case("adaptiveavgpool2d-none", "AdaptiveAvgPool2d", (randn(2, 3, 6, 7),), ((None, 3),)),
    Case("adaptiveavgpool2d-unbatched", "AdaptiveAvgPool2d", (randn(3, 9, 7),), (4,)),
    Case(
        "adaptiveavgpool2d-noncontiguous",
        "AdaptiveAvgPool2d",
        (randn(2, 3, 9, 7, view=transposed),),
        (4,),
    ),
    # A NaN or inf reaches only the windows that hold it (torch: [inf, 1, 2, 3] -> [inf, 2.5]).
    Case(
        "adaptiveavgpool1d-inf",
        "AdaptiveAvgPool1d",
        (values([[[math.inf, 1, 2, 3]]]),),
        (2,),
        gradcheck=False,
    ),
    Case(
        "adaptiveavgpool1d-all-inf",
        "AdaptiveAvgPool1d",
        (values([[[math.inf] * 5]]),),
        (3,),
        gradcheck=False,
    ),
    Case("adaptiveavgpool2d-nan", "AdaptiveAvgPool2d", (values(NAN),), ((2, 3),), gradcheck=False),
    Case(
        "adaptiveavgpool3d-nonfinite",
        "AdaptiveAvgPool3d",
        (values([NAN[0], [[[-math.inf, 1.0, 2.0, 0.0]] * 3]]),),
        ((1, 2, 3),),
        gradcheck=False,
    ),
    Case("adaptiveavgpool1d-not-dividing", "AdaptiveAvgPool1d", (randn(2, 3, 10),), (3,)),
    Case("adaptiveavgpool1d-larger-unbatched", "AdaptiveAvgPool1d", (randn(3, 4),), (6,)),
    Case(
        "adaptiveavgpool3d-not-dividing", "AdaptiveAvgPool3d", (randn(2, 2, 5, 6, 7),), ((2, 3, 4),)
    ),
    Case(
        "adaptiveavgpool3d-none-unbatched",
        "AdaptiveAvgPool3d",
        (randn(2, 5, 4, 6),),
        ((None, 3, None),),
    ),
]

CASES = _MAX + _AVG + _ADAPTIVE

X4 = randn(2, 3, 6, 6)

ERROR_CASES = [
    ErrorCase("maxpool2d-kernel-zero", "MaxPool2d", (X4,), (0,)),
    ErrorCase("maxpool2d-stride-zero", "MaxPool2d", (X4,), (2, 0)),
    ErrorCase("maxpool2d-dilation-zero", "MaxPool2d", (X4,), (2, 1, 0, 0)),
    ErrorCase("maxpool2d-pad-over-half-kernel", "MaxPool2d", (X4,), (3, 1, 2)),
    ErrorCase("maxpool2d-pad-over-half-kernel-dilated", "MaxPool2d", (X4,), (3, 1, 2, 2)),
    ErrorCase("maxpool2d-negative-padding", "MaxPool2d", (X4,), (3, 1, -1)),
    ErrorCase("maxpool2d-output-too-small", "MaxPool2d", (randn(1, 3, 2, 2),), (3,)),
    ErrorCase("maxpool2d-5d-input", "MaxPool2d", (randn(1, 2, 3, 6, 6),), (2,)),
    ErrorCase("maxpool2d-2d-input", "MaxPool2d", (randn(6, 6),), (2,)),
    ErrorCase("maxpool2d-empty-spatial", "MaxPool2d", (randn(2, 3, 0, 6),), (2,)),
    ErrorCase("maxpool2d-kernel-3-tuple", "MaxPool2d", (X4,), ((2, 2, 2),)),
    ErrorCase("maxpool2d-kernel-float", "MaxPool2d", (X4,), (2.0,)),
    ErrorCase("maxpool1d-stride-zero", "MaxPool1d", (randn(2, 3, 6),), (2, 0)),
    ErrorCase("maxpool1d-4d-input", "MaxPool1d", (X4,), (2,)),
    ErrorCase("maxpool1d-output-too-small", "MaxPool1d", (randn(2, 3, 2),), (3,)),
    ErrorCase("maxpool1d-kernel-2-tuple", "MaxPool1d", (randn(2, 3, 6),), ((2, 2),)),
    ErrorCase("maxpool3d-pad-over-half-kernel", "MaxPool3d", (randn(1, 2, 4, 6, 6),), (2, 1, 2)),
    ErrorCase("maxpool3d-3d-input", "MaxPool3d", (randn(3, 6, 6),), (2,)),
    ErrorCase("avgpool2d-stride-zero", "AvgPool2d", (X4,), (2, 0)),
    ErrorCase("avgpool2d-pad-over-half-kernel", "AvgPool2d", (X4,), (3, 1, 2)),
    ErrorCase("avgpool2d-output-too-small", "AvgPool2d", (randn(1, 3, 2, 2),), (3,)),
    ErrorCase("avgpool2d-divisor-zero", "AvgPool2d", (X4,), (2,), {"divisor_override": 0}),
    ErrorCase("avgpool2d-divisor-float", "AvgPool2d", (X4,), (2,), {"divisor_override": 2.5}),
    ErrorCase("avgpool2d-5d-input", "AvgPool2d", (randn(1, 2, 3, 6, 6),), (2,)),
    ErrorCase("avgpool1d-4d-input", "AvgPool1d", (X4,), (2,)),
    ErrorCase("avgpool1d-kernel-2-tuple", "AvgPool1d", (randn(2, 3, 6),), ((2, 2),)),
    ErrorCase("avgpool3d-stride-zero", "AvgPool3d", (randn(1, 2, 4, 6, 6),), (2, 0)),
    ErrorCase("maxpool2d-ceil-mode-int", "MaxPool2d", (X4,), (2,), {"ceil_mode": 1}),
    ErrorCase("avgpool2d-ceil-mode-int", "AvgPool2d", (X4,), (2,), {"ceil_mode": 1}),
    ErrorCase(
        "avgpool1d-count-include-pad-int",
        "AvgPool1d",
        (randn(2, 3, 6),),
        (2,),
        {"count_include_pad": 0},
    ),
    ErrorCase("adaptiveavgpool2d-negative", "AdaptiveAvgPool2d", (X4,), (-1,)),
    ErrorCase("adaptiveavgpool2d-3-tuple", "AdaptiveAvgPool2d", (X4,), ((2, 2, 2),)),
    ErrorCase("adaptiveavgpool2d-5d-input", "AdaptiveAvgPool2d", (randn(1, 2, 3, 6, 6),), (2,)),
    ErrorCase("adaptiveavgpool2d-empty-spatial", "AdaptiveAvgPool2d", (randn(2, 3, 0, 6),), (2,)),
    ErrorCase("adaptiveavgpool2d-2d-input-tuple", "AdaptiveAvgPool2d", (randn(6, 6),), ((2, 2),)),
    ErrorCase("adaptiveavgpool2d-float", "AdaptiveAvgPool2d", (X4,), (2.0,)),
    ErrorCase("adaptiveavgpool1d-none", "AdaptiveAvgPool1d", (randn(2, 3, 6),), (None,)),
    ErrorCase("adaptiveavgpool1d-2-tuple", "AdaptiveAvgPool1d", (randn(2, 3, 6),), ((2, 2),)),
    ErrorCase("adaptiveavgpool3d-4d-tuple", "AdaptiveAvgPool3d", (randn(2, 4, 6, 6),), ((2, 2),)),
]
