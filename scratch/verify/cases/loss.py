"""Parity cases of the loss family: cross entropy, NLL, MSE, BCE and BCE with logits.

Targets that are probabilities (cross entropy's soft targets, MSE, BCE) require grad, so their
gradients are compared too. Class weights travel as constructor arguments (torch's buffers).
Names read `<layer>-<what>`, the layer in lower case (crossentropy-, nll-, mse-, bce-).
"""

import math

import torch

from scratch.verify.parity import (
    Case,
    ErrorCase,
    classes,
    filled,
    float64_uniform,
    probabilities,
    randn,
    targets,
    transposed,
    uniform,
    values,
)

IGNORE = -100
W5 = torch.tensor([0.2, 1.0, 2.5, 0.7, 1.3])  # class weights for 5 classes
EXTREME = [[1e4, -1e4, 0.0, 3.0, -1e4], [-1e4, -1e4, -1e4, -1e4, -1e4]]


# nn.CrossEntropyLoss: F.cross_entropy, kernels cross_entropy_forward / cross_entropy_backward
CROSS_ENTROPY = [
    Case("crossentropy-2d", "CrossEntropyLoss", (randn(6, 5), classes(6, num_classes=5))),
    Case(
        "crossentropy-weight-ignore-smoothing",
        "CrossEntropyLoss",
        (randn(8, 5), classes(8, num_classes=5, ignore=IGNORE)),
        kwargs={"weight": W5, "label_smoothing": 0.1},
    ),
    Case(
        "crossentropy-sum-weight-smoothing",
        "CrossEntropyLoss",
        (randn(8, 5), classes(8, num_classes=5, ignore=IGNORE)),
        kwargs={"weight": W5, "label_smoothing": 0.2, "reduction": "sum"},
    ),
    Case(
        "crossentropy-none-weight",
        "CrossEntropyLoss",
        (randn(8, 5), classes(8, num_classes=5, ignore=IGNORE)),
        kwargs={"weight": W5, "reduction": "none"},
    ),
    Case(
        "crossentropy-4d-weight-smoothing",
        "CrossEntropyLoss",
        (randn(2, 5, 3, 4), classes(2, 3, 4, num_classes=5, ignore=IGNORE)),
        kwargs={"weight": W5, "label_smoothing": 0.1},
    ),
    Case(
        "crossentropy-3d-none",
        "CrossEntropyLoss",
        (randn(2, 5, 3), classes(2, 3, num_classes=5)),
        kwargs={"reduction": "none"},
    ),
    Case("crossentropy-unbatched", "CrossEntropyLoss", (randn(5), classes(num_classes=5))),
    Case(
        "crossentropy-ignore-index-in-range",
        "CrossEntropyLoss",
        (randn(4, 5), targets([1, 0, 1, 3])),
        kwargs={"ignore_index": 1, "label_smoothing": 0.1},
    ),
    Case(
        "crossentropy-probabilities",
        "CrossEntropyLoss",
        (randn(6, 5), probabilities(6, 5, grad=True)),
    ),
    Case(
        "crossentropy-probabilities-sum-weight-smoothing",
        "CrossEntropyLoss",
        (randn(6, 5), probabilities(6, 5, grad=True)),
        kwargs={"weight": W5, "label_smoothing": 0.1, "reduction": "sum"},
    ),
    Case(
        "crossentropy-probabilities-4d-none",
        "CrossEntropyLoss",
        (randn(2, 5, 3, 2), probabilities(2, 5, 3, 2, grad=True)),
        kwargs={"reduction": "none"},
    ),
    Case(
        "crossentropy-extreme-logits",
        "CrossEntropyLoss",
        (values(EXTREME), targets([1, 3])),
        kwargs={"label_smoothing": 0.1},
        gradcheck=False,  # saturated softmax: finite differences of 1e4 logits are noise
    ),
    Case(
        "crossentropy-all-ignored",
        "CrossEntropyLoss",
        (randn(3, 5), targets([IGNORE] * 3)),
        kwargs={"weight": W5, "label_smoothing": 0.1},
        gradcheck=False,  # the loss is nan (0 / 0), the gradient 0, as torch
    ),
    Case(
        "crossentropy-empty-batch",
        "CrossEntropyLoss",
        (randn(0, 5), classes(0, num_classes=5)),
        gradcheck=False,
    ),
    Case(
        "crossentropy-noncontiguous",
        "CrossEntropyLoss",
        (randn(5, 6, view=transposed), classes(6, num_classes=5)),
    ),
    Case(
        "crossentropy-legacy-size-average",
        "CrossEntropyLoss",
        (randn(6, 5), classes(6, num_classes=5)),
        kwargs={"size_average": False},
    ),
]

# nn.NLLLoss: F.nll_loss
NLL = [
    Case("nll-2d", "NLLLoss", (randn(6, 5), classes(6, num_classes=5))),
    Case(
        "nll-weight-ignore",
        "NLLLoss",
        (randn(8, 5), classes(8, num_classes=5, ignore=IGNORE)),
        kwargs={"weight": W5},
    ),
    Case(
        "nll-none-weight-ignore",
        "NLLLoss",
        (randn(8, 5), classes(8, num_classes=5, ignore=IGNORE)),
        kwargs={"weight": W5, "reduction": "none"},
    ),
    Case(
        "nll-4d-sum",
        "NLLLoss",
        (randn(2, 5, 3, 4), classes(2, 3, 4, num_classes=5, ignore=IGNORE)),
        kwargs={"reduction": "sum"},
    ),
    Case("nll-unbatched", "NLLLoss", (randn(5), classes(num_classes=5))),
    Case(
        "nll-all-ignored",
        "NLLLoss",
        (randn(3, 5), targets([IGNORE] * 3)),
        gradcheck=False,  # nan loss, zero gradient
    ),
    Case("nll-byte-target", "NLLLoss", (randn(4, 5), targets([4, 0, 2, 2], torch.uint8))),
]

# nn.MSELoss: F.mse_loss
MSE = [
    Case("mse-2d", "MSELoss", (randn(4, 5), randn(4, 5))),
    Case(
        "mse-4d-sum", "MSELoss", (randn(2, 3, 4, 5), randn(2, 3, 4, 5)), kwargs={"reduction": "sum"}
    ),
    Case("mse-none", "MSELoss", (randn(3, 4), randn(3, 4)), kwargs={"reduction": "none"}),
    Case("mse-broadcast-target", "MSELoss", (randn(3, 4), randn(4))),
    Case("mse-noncontiguous", "MSELoss", (randn(5, 4, view=transposed), randn(4, 5))),
    Case("mse-empty", "MSELoss", (randn(0, 4), randn(0, 4)), gradcheck=False),
]

# nn.BCELoss and nn.BCEWithLogitsLoss: F.binary_cross_entropy(_with_logits)
BCE = [
    Case("bce-2d", "BCELoss", (uniform(4, 5, low=0.05, high=0.95), uniform(4, 5))),
    Case(
        "bce-weight-sum",
        "BCELoss",
        (uniform(4, 5, low=0.05, high=0.95), uniform(4, 5)),
        kwargs={"weight": W5, "reduction": "sum"},
    ),
    Case(
        "bce-none",
        "BCELoss",
        (uniform(2, 3, 4, low=0.05, high=0.95), uniform(2, 3, 4)),
        kwargs={"reduction": "none"},
    ),
    Case(
        "bce-exact-0-and-1",
        "BCELoss",
        (values([[0.0, 1.0, 0.0, 1.0, 0.5]]), values([[0.0, 1.0, 1.0, 0.3, 0.5]])),
        kwargs={"reduction": "none"},
        gradcheck=False,  # the -100 clamp and the 1e-12 floor are torch's, not the calculus
    ),
    Case(
        "bcelogits-2d",
        "BCEWithLogitsLoss",
        (randn(4, 5, scale=3.0), uniform(4, 5)),
    ),
    Case(
        "bcelogits-weight-pos-weight",
        "BCEWithLogitsLoss",
        (randn(4, 5, scale=3.0), uniform(4, 5)),
        kwargs={"weight": W5, "pos_weight": W5 * 2},
    ),
    Case(
        "bcelogits-4d-pos-weight-none",
        "BCEWithLogitsLoss",
        (randn(2, 3, 2, 2), uniform(2, 3, 2, 2)),
        kwargs={"pos_weight": torch.tensor([[[0.5]], [[2.0]], [[4.0]]]), "reduction": "none"},
    ),
    Case(
        "bcelogits-extreme",
        "BCEWithLogitsLoss",
        (values(EXTREME), uniform(2, 5)),
        kwargs={"pos_weight": W5},
        gradcheck=False,
    ),
]


EDGE = [
    # label_smoothing=nan or < 0 means no smoothing in torch (it smooths only when > 0)
    Case("crossentropy-label-smoothing-nan", "CrossEntropyLoss", (randn(3, 4), targets([0, 3, 1])),
         kwargs={"label_smoothing": math.nan}),
    Case("crossentropy-label-smoothing-negative", "CrossEntropyLoss",
         (randn(3, 4), targets([0, 3, 1])), kwargs={"label_smoothing": -0.5}),
    # no classes (every target ignored): an empty gradient, torch's NaN mean
    Case("crossentropy-no-classes", "CrossEntropyLoss", (randn(2, 0), filled(2, value=-100)),
         gradcheck=False),
    Case("nll-no-classes-sum", "NLLLoss", (randn(2, 0), filled(2, value=-100)),
         kwargs={"reduction": "sum"}, gradcheck=False),
    # BCEWithLogits' result takes the target's dtype (torch's rule), input and target differ
    Case("bcelogits-target-other-dtype", "BCEWithLogitsLoss", (randn(3, 4), float64_uniform(3, 4)),
         gradcheck=False),
    Case("bcelogits-target-other-dtype-none", "BCEWithLogitsLoss",
         (randn(3, 4), float64_uniform(3, 4)), kwargs={"reduction": "none"}, gradcheck=False),
]  # fmt: skip

CASES = CROSS_ENTROPY + NLL + MSE + BCE + EDGE

ERROR_CASES = [
    ErrorCase(
        "crossentropy-ignore-index-float",
        "CrossEntropyLoss",
        (randn(3, 4), targets([0, 1, 2])),
        kwargs={"ignore_index": 1.0},
    ),
    ErrorCase(
        "nll-ignore-index-float",
        "NLLLoss",
        (randn(3, 4), targets([0, 1, 2])),
        kwargs={"ignore_index": 1.0},
    ),
    ErrorCase("nll-no-classes-nd", "NLLLoss", (randn(2, 0, 3), filled(2, 3, value=-100))),
    ErrorCase(
        "crossentropy-target-out-of-bounds", "CrossEntropyLoss", (randn(3, 4), targets([0, 1, 7]))
    ),
    ErrorCase("crossentropy-batch-mismatch", "CrossEntropyLoss", (randn(3, 4), targets([0, 1]))),
    ErrorCase(
        "crossentropy-weight-size",
        "CrossEntropyLoss",
        (randn(3, 4), targets([0, 1, 2])),
        kwargs={"weight": torch.ones(3)},
    ),
    ErrorCase(
        "crossentropy-smoothing-above-1",
        "CrossEntropyLoss",
        (randn(3, 4), targets([0, 1, 2])),
        kwargs={"label_smoothing": 1.5},
    ),
    ErrorCase(
        "crossentropy-probabilities-ignore-index",
        "CrossEntropyLoss",
        (randn(3, 4), probabilities(3, 4)),
        kwargs={"ignore_index": 1},
    ),
    ErrorCase(
        "crossentropy-4d-target-shape",
        "CrossEntropyLoss",
        (randn(2, 3, 4, 5), classes(2, 4, 4, num_classes=3)),
    ),
    ErrorCase(
        "crossentropy-int32-target",
        "CrossEntropyLoss",
        (randn(3, 4), targets([0, 1, 2], torch.int32)),
    ),
    ErrorCase(
        "crossentropy-bad-reduction",
        "CrossEntropyLoss",
        (randn(3, 4), targets([0, 1, 2])),
        kwargs={"reduction": "avg"},
    ),
    ErrorCase("nll-target-out-of-bounds", "NLLLoss", (randn(2, 3, 4), targets([[0, 1, 2, 3]] * 2))),
    ErrorCase("nll-scalar-input", "NLLLoss", (randn(), targets(0))),
    ErrorCase("nll-unbatched-target-size", "NLLLoss", (randn(4), targets([1, 2]))),
    ErrorCase("mse-not-broadcastable", "MSELoss", (randn(3, 4), randn(2, 4))),
    ErrorCase("bce-input-outside-0-1", "BCELoss", (values([0.5, 1.5]), values([0.0, 1.0]))),
    ErrorCase("bce-target-outside-0-1", "BCELoss", (values([0.5, 0.5]), values([0.0, -1.0]))),
    ErrorCase("bce-size-mismatch", "BCELoss", (uniform(3, 4), uniform(3))),
    ErrorCase("bcelogits-size-mismatch", "BCEWithLogitsLoss", (randn(3, 4), uniform(3))),
    ErrorCase(
        "bcelogits-pos-weight-shape",
        "BCEWithLogitsLoss",
        (randn(3, 4), uniform(3, 4)),
        kwargs={"pos_weight": torch.ones(3)},
    ),
]
