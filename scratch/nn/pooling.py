"""Drop-in twins of torch/nn/modules/pooling.py: max, average and adaptive average pooling."""

from __future__ import annotations

import torch

from scratch import functional as F
from scratch.nn._twin import Twin

__all__ = [
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
]


def _max_pool(self: torch.nn.modules.pooling._MaxPoolNd, input: torch.Tensor, fn):
    return fn(
        input,
        self.kernel_size,
        self.stride,
        self.padding,
        self.dilation,
        ceil_mode=self.ceil_mode,
        return_indices=self.return_indices,
        backend=self.backend,
    )


class MaxPool1d(Twin, torch.nn.MaxPool1d):
    def forward(self, input: torch.Tensor):
        return _max_pool(self, input, F.max_pool1d)


class MaxPool2d(Twin, torch.nn.MaxPool2d):
    def forward(self, input: torch.Tensor):
        return _max_pool(self, input, F.max_pool2d)


class MaxPool3d(Twin, torch.nn.MaxPool3d):
    def forward(self, input: torch.Tensor):
        return _max_pool(self, input, F.max_pool3d)


class AvgPool1d(Twin, torch.nn.AvgPool1d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.avg_pool1d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            backend=self.backend,
        )


def _avg_pool(self: torch.nn.AvgPool2d | torch.nn.AvgPool3d, input: torch.Tensor, fn):
    return fn(
        input,
        self.kernel_size,
        self.stride,
        self.padding,
        self.ceil_mode,
        self.count_include_pad,
        self.divisor_override,
        backend=self.backend,
    )


class AvgPool2d(Twin, torch.nn.AvgPool2d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _avg_pool(self, input, F.avg_pool2d)


class AvgPool3d(Twin, torch.nn.AvgPool3d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _avg_pool(self, input, F.avg_pool3d)


class AdaptiveAvgPool1d(Twin, torch.nn.AdaptiveAvgPool1d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool1d(input, self.output_size, backend=self.backend)


class AdaptiveAvgPool2d(Twin, torch.nn.AdaptiveAvgPool2d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(input, self.output_size, backend=self.backend)


class AdaptiveAvgPool3d(Twin, torch.nn.AdaptiveAvgPool3d):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool3d(input, self.output_size, backend=self.backend)
