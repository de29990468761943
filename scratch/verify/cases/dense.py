"""Parity cases of the dense family: linear, flatten, activations, softmax, dropout.

Each family module exports `CASES` (parity rows) and `ERROR_CASES` (bad arguments that must
raise what torch raises); `scratch.verify.cases` concatenates them. Names read `<layer>-<what>`.
"""

from __future__ import annotations

import math

from scratch.verify.parity import Case, ErrorCase, randn, strided, transposed, values

# Values exactly at the kinks (0) and either side, for relu-like layers; tie-free elsewhere.
KINKS = [[-2.0, -0.5, 0.0, 0.5, 2.0], [0.0, -1e-3, 1e-3, -3.0, 3.0]]
EXTREME = [[1e4, -1e4, 0.0, 3.0], [-1e4, -1e4, -1e4, -1e4]]
# NaN and +-inf beside ordinary values: torch's mask rules at NaN (relu: `y <= 0 ? 0 : grad`).
NONFINITE = [[math.nan, -1.0, 0.0, 2.0], [math.inf, -math.inf, math.nan, 0.5]]
# Not +inf for GELU: torch's float32 GELU(+inf) is NaN (its vectorized erf), ours +inf, which
# is right (x * Phi(x) -> x); that difference is torch's and stays.
NONFINITE_GELU = [[math.nan, -1.0, 0.0, 2.0], [1e30, -math.inf, math.nan, 0.5]]

CASES = [
    Case("linear-2d", "Linear", (randn(4, 5),), (5, 3)),
    Case("linear-batch1", "Linear", (randn(1, 5),), (5, 3)),
    Case("linear-unbatched", "Linear", (randn(5),), (5, 3)),
    Case("linear-3d-nobias", "Linear", (randn(2, 3, 5),), (5, 4), {"bias": False}),
    Case("linear-noncontiguous", "Linear", (randn(5, 4, view=transposed),), (5, 3)),
    # a few rows through a wide layer: the NumPy kernel's transposed product (float32)
    Case("linear-wide", "Linear", (randn(6, 300),), (300, 260), gradcheck=False),
    Case(
        "linear-wide-3d-nobias",
        "Linear",
        (randn(2, 3, 256),),
        (256, 257),
        {"bias": False},
        gradcheck=False,
    ),
    Case(
        "linear-wide-noncontiguous",
        "Linear",
        (randn(300, 5, view=transposed),),
        (300, 256),
        gradcheck=False,
    ),
    Case("linear-empty-batch", "Linear", (randn(0, 5),), (5, 3), gradcheck=False),
    Case("linear-in-features-0", "Linear", (randn(3, 0),), (0, 2), gradcheck=False),
    Case("linear-out-features-0", "Linear", (randn(3, 4),), (4, 0), gradcheck=False),
    Case("softmax-empty-dim", "Softmax", (randn(3, 0),), kwargs={"dim": 1}, gradcheck=False),
    Case("logsoftmax-empty-dim", "LogSoftmax", (randn(2, 0, 3),), kwargs={"dim": 1}),
    Case("flatten-default", "Flatten", (randn(2, 3, 4, 2),)),
    Case("flatten-middle", "Flatten", (randn(2, 3, 4, 2),), (1, 2)),
    Case("flatten-negative-dims", "Flatten", (randn(2, 3, 4, 6, view=strided),), (-3, -1)),
    Case("relu-random", "ReLU", (randn(3, 7),)),
    Case("relu-kinks", "ReLU", (values(KINKS),), gradcheck=False),
    Case("relu-inplace", "ReLU", (randn(2, 3, 4),), kwargs={"inplace": True}),
    Case("relu-noncontiguous", "ReLU", (randn(3, 8, view=strided),)),
    Case("leakyrelu-default", "LeakyReLU", (randn(3, 7),)),
    Case("leakyrelu-kinks", "LeakyReLU", (values(KINKS),), (0.2,), gradcheck=False),
    Case("leakyrelu-inplace", "LeakyReLU", (randn(4, 5),), (0.3, True)),
    Case("sigmoid-random", "Sigmoid", (randn(3, 7, scale=3.0),)),
    Case("sigmoid-extreme", "Sigmoid", (values(EXTREME),)),
    Case("tanh-random", "Tanh", (randn(3, 7, scale=2.0),)),
    Case("tanh-extreme", "Tanh", (values(EXTREME),)),
    Case("gelu-none", "GELU", (randn(3, 7, scale=2.0),)),
    Case("gelu-tanh", "GELU", (randn(3, 7, scale=2.0),), kwargs={"approximate": "tanh"}),
    Case("gelu-kinks", "GELU", (values(KINKS),)),
    Case("softmax-dim1", "Softmax", (randn(4, 6),), kwargs={"dim": 1}),
    Case("softmax-dim0", "Softmax", (randn(4, 6),), kwargs={"dim": 0}),
    Case("softmax-neg-dim-4d", "Softmax", (randn(2, 3, 4, 5),), kwargs={"dim": -1}),
    Case("softmax-implicit-2d", "Softmax", (randn(4, 6),)),
    Case("softmax-implicit-3d", "Softmax", (randn(3, 4, 5),)),
    Case("softmax-extreme", "Softmax", (values(EXTREME),), kwargs={"dim": 1}),
    Case("softmax-noncontiguous", "Softmax", (randn(5, 4, view=transposed),), kwargs={"dim": 1}),
    Case("logsoftmax-dim1", "LogSoftmax", (randn(4, 6),), kwargs={"dim": 1}),
    Case("logsoftmax-unbatched", "LogSoftmax", (randn(6),), kwargs={"dim": 0}),
    Case("logsoftmax-implicit-1d", "LogSoftmax", (randn(6),)),
    Case("logsoftmax-extreme", "LogSoftmax", (values(EXTREME),), kwargs={"dim": 1}),
    *(
        Case(f"{layer.lower()}-nonfinite", layer, (values(NONFINITE),), kwargs=kw, gradcheck=False)
        for layer, kw in [
            ("ReLU", {}),
            ("LeakyReLU", {}),
            ("Sigmoid", {}),
            ("Tanh", {}),
            ("Softmax", {"dim": 1}),
            ("LogSoftmax", {"dim": 1}),
        ]
    ),
    Case("gelu-nonfinite", "GELU", (values(NONFINITE_GELU),), gradcheck=False),
    Case("dropout-train", "Dropout", (randn(8, 16),)),
    Case("dropout-p0.2-4d", "Dropout", (randn(2, 3, 4, 5),), (0.2,)),
    Case("dropout-p1", "Dropout", (randn(4, 5),), (1.0,)),
    Case("dropout-p0", "Dropout", (randn(4, 5),), (0.0,)),
    Case("dropout-inplace", "Dropout", (randn(4, 5),), (0.5, True)),
    Case("dropout-eval", "Dropout", (randn(4, 5),), train=False),
]

ERROR_CASES = [
    ErrorCase("linear-features-mismatch", "Linear", (randn(4, 6),), (5, 3)),
    ErrorCase("linear-scalar-input", "Linear", (randn(),), (1, 3)),
    ErrorCase("flatten-dim-out-of-range", "Flatten", (randn(2, 3),), (1, 5)),
    ErrorCase("flatten-start-after-end", "Flatten", (randn(2, 3, 4),), (2, 1)),
    ErrorCase("softmax-dim-out-of-range", "Softmax", (randn(2, 3),), kwargs={"dim": 2}),
    ErrorCase("logsoftmax-dim-out-of-range", "LogSoftmax", (randn(2, 3),), kwargs={"dim": -3}),
    ErrorCase("gelu-bad-approximate", "GELU", (randn(2, 3),), kwargs={"approximate": "fast"}),
    ErrorCase("dropout-p-above-1", "Dropout", (randn(2, 3),), (1.5,)),
    ErrorCase("dropout-p-negative", "Dropout", (randn(2, 3),), (-0.1,)),
]
