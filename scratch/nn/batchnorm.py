"""Drop-in twins of torch/nn/modules/batchnorm.py: BatchNorm1d, BatchNorm2d, BatchNorm3d."""

from __future__ import annotations

import torch

from scratch import functional as F
from scratch.nn._twin import Twin

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


def _forward(self: torch.nn.modules.batchnorm._BatchNorm, input: torch.Tensor) -> torch.Tensor:
    """torch's `_BatchNorm.forward`, its bookkeeping verbatim, the math in scratch.

    Shapes: input (N, C, *) -> (N, C, *); the number of dims is checked by each class.
    """
    self._check_input_dim(input)
    factor = 0.0 if self.momentum is None else self.momentum
    if self.training and self.track_running_stats and self.num_batches_tracked is not None:
        self.num_batches_tracked.add_(1)
        # momentum=None: a cumulative moving average over the batches seen so far
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
    # batch statistics in training, and in eval too when no running stats are kept
    use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
    # training moves the buffers only when they are tracked
    pass_buffers = not self.training or self.track_running_stats
    return F.batch_norm(
        input,
        self.running_mean if pass_buffers else None,
        self.running_var if pass_buffers else None,
        self.weight,
        self.bias,
        use_batch_stats,
        factor,
        self.eps,
        backend=self.backend,
    )


class BatchNorm1d(Twin, torch.nn.BatchNorm1d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _forward(self, input)


class BatchNorm2d(Twin, torch.nn.BatchNorm2d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _forward(self, input)


class BatchNorm3d(Twin, torch.nn.BatchNorm3d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _forward(self, input)
