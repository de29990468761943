"""Drop-in twins of torch/nn/modules/conv.py: Conv1d, Conv2d, Conv3d.

Each overrides only `forward`, one line into `scratch.functional.conv{1,2,3}d`, so constructor
checks, init, `extra_repr` and state_dict keys stay torch's; `padding_mode` travels to the
functional instead of torch's separate `F.pad`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from scratch import functional as F
from scratch.nn._twin import Twin

__all__ = ["Conv1d", "Conv2d", "Conv3d"]


def _forward(self: torch.nn.modules.conv._ConvNd, input: torch.Tensor, fn: Callable):
    """torch's `_ConvNd.forward` with the module's own weight, bias and options, through `fn`."""
    return fn(
        input,
        self.weight,
        self.bias,
        self.stride,
        self.padding,
        self.dilation,
        self.groups,
        backend=self.backend,
        padding_mode=self.padding_mode,
    )


class Conv1d(Twin, torch.nn.Conv1d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _forward(self, input, F.conv1d)


class Conv2d(Twin, torch.nn.Conv2d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _forward(self, input, F.conv2d)


class Conv3d(Twin, torch.nn.Conv3d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _forward(self, input, F.conv3d)
