"""Parity cases of the norm family: BatchNorm1d, BatchNorm2d, BatchNorm3d.

The harness compares the buffers after the forward too, so every training row also checks
running_mean, running_var and num_batches_tracked against torch's.
"""

from __future__ import annotations

from scratch.verify.parity import Case, ErrorCase, randn, randomize, strided, transposed, values

# (4, 3): channel 1 holds one value, so its batch variance is exactly 0.
CONSTANT_CHANNEL = [[1.0, 0.75, -2.0], [3.0, 0.75, 0.5], [-1.0, 0.75, 2.0], [0.0, 0.75, 1.5]]

X2D = randn(2, 3, 4, 4)  # (N, C, H, W) for the BatchNorm2d(3) option rows
UNTRACKED, NO_AFFINE = {"track_running_stats": False}, {"affine": False}

# nn.BatchNorm1d/2d/3d: F.batch_norm (kernels batch_norm_forward / batch_norm_backward)
CASES = [
    Case("batchnorm1d-2d-train", "BatchNorm1d", (randn(8, 5, scale=2.0),), (5,)),
    Case("batchnorm1d-3d-train", "BatchNorm1d", (randn(4, 3, 7),), (3,)),
    Case("batchnorm1d-batch2-train", "BatchNorm1d", (randn(2, 4),), (4,)),
    Case("batchnorm1d-2d-eval", "BatchNorm1d", (randn(8, 5),), (5,), train=False),
    Case("batchnorm1d-batch1-eval", "BatchNorm1d", (randn(1, 5),), (5,), train=False),
    Case("batchnorm1d-constant-channel", "BatchNorm1d", (values(CONSTANT_CHANNEL),), (3,)),
    Case("batchnorm1d-noncontiguous", "BatchNorm1d", (randn(4, 6, 3, view=transposed),), (3,)),
    Case("batchnorm2d-train", "BatchNorm2d", (randn(2, 3, 5, 4, scale=3.0),), (3,)),
    Case("batchnorm2d-batch1-train", "BatchNorm2d", (randn(1, 3, 4, 5),), (3,)),
    Case("batchnorm2d-eval", "BatchNorm2d", (randn(2, 3, 5, 4),), (3,), train=False),
    Case("batchnorm2d-momentum-none", "BatchNorm2d", (X2D,), (3,), {"momentum": None}),
    Case("batchnorm2d-momentum-0.5-eps-1e-3", "BatchNorm2d", (randn(3, 2, 4, 3),), (2, 1e-3, 0.5)),
    Case("batchnorm2d-affine-false", "BatchNorm2d", (X2D,), (3,), NO_AFFINE),
    Case("batchnorm2d-affine-false-eval", "BatchNorm2d", (X2D,), (3,), NO_AFFINE, train=False),
    Case("batchnorm2d-bias-false", "BatchNorm2d", (X2D,), (3,), {"bias": False}),
    Case("batchnorm2d-untracked-train", "BatchNorm2d", (X2D,), (3,), UNTRACKED),
    Case("batchnorm2d-untracked-eval", "BatchNorm2d", (X2D,), (3,), UNTRACKED, train=False),
    Case("batchnorm2d-noncontiguous", "BatchNorm2d", (randn(2, 3, 4, 8, view=strided),), (3,)),
    Case("batchnorm2d-empty-batch", "BatchNorm2d", (randn(0, 3, 4, 4),), (3,)),
    # Random weight, bias and running stats, 3 batches already tracked (momentum=None averages).
    Case("batchnorm2d-random-state-train", "BatchNorm2d", (X2D,), (3,), setup=randomize),
    Case(
        "batchnorm2d-random-state-eval", "BatchNorm2d", (X2D,), (3,), train=False, setup=randomize
    ),
    Case(
        "batchnorm2d-random-state-momentum-none",
        "BatchNorm2d",
        (X2D,),
        (3,),
        {"momentum": None},
        setup=randomize,
    ),
    Case(
        "batchnorm1d-random-state-eval",
        "BatchNorm1d",
        (randn(6, 4),),
        (4,),
        train=False,
        setup=randomize,
    ),
    Case("batchnorm3d-train", "BatchNorm3d", (randn(2, 2, 3, 4, 3),), (2,)),
    Case("batchnorm3d-eval", "BatchNorm3d", (randn(2, 2, 3, 4, 3),), (2,), train=False),
    Case("batchnorm1d-no-features-no-affine", "BatchNorm1d", (randn(4, 0),), (0,),
         {"affine": False, "track_running_stats": False}, gradcheck=False),
]  # fmt: skip

ERROR_CASES = [
    ErrorCase("batchnorm1d-batch1-train", "BatchNorm1d", (randn(1, 5),), (5,)),
    ErrorCase("batchnorm2d-batch1-1x1-train", "BatchNorm2d", (randn(1, 3, 1, 1),), (3,)),
    ErrorCase("batchnorm1d-4d-input", "BatchNorm1d", (randn(2, 3, 4, 4),), (3,)),
    ErrorCase("batchnorm2d-3d-input", "BatchNorm2d", (randn(2, 3, 4),), (3,)),
    ErrorCase("batchnorm3d-4d-input", "BatchNorm3d", (randn(2, 3, 4, 4),), (3,)),
    ErrorCase("batchnorm2d-features-mismatch", "BatchNorm2d", (randn(2, 4, 3, 3),), (3,)),
    ErrorCase("batchnorm2d-eps-zero-train", "BatchNorm2d", (randn(2, 3, 3, 3),), (3, 0.0)),
    ErrorCase("batchnorm1d-no-features", "BatchNorm1d", (randn(4, 0),), (0,)),
]
