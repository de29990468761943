"""Drop-in twins of torch/nn/modules/conv.py: Conv1d, Conv2d, Conv3d.

Each overrides only `_conv_forward`, the one place torch's Conv*d.forward convolves, so
constructor checks, init, `extra_repr`, state_dict keys and `forward` itself stay torch's;
padding_mode travels to the functional instead of a separate F.pad.
"""

from __future__ import annotations

import torch

from scratch import functional as F
from scratch.nn._twin import Twin

__all__ = ["Conv1d", "Conv2d", "Conv3d"]


def _conv_forward(self: torch.nn.modules.conv._ConvNd, input, weight, bias, fn) -> torch.Tensor:
    return fn(
        input,
        weight,
        bias,
        self.stride,
        self.padding,
        self.dilation,
        self.groups,
        backend=self.backend,
        padding_mode=self.padding_mode,
    )


class Conv1d(Twin, torch.nn.Conv1d):
    def _conv_forward(self, input: torch.Tensor, weight, bias) -> torch.Tensor:
        return _conv_forward(self, input, weight, bias, F.conv1d)


class Conv2d(Twin, torch.nn.Conv2d):
    def _conv_forward(self, input: torch.Tensor, weight, bias) -> torch.Tensor:
        return _conv_forward(self, input, weight, bias, F.conv2d)


class Conv3d(Twin, torch.nn.Conv3d):
    def _conv_forward(self, input: torch.Tensor, weight, bias) -> torch.Tensor:
        return _conv_forward(self, input, weight, bias, F.conv3d)
