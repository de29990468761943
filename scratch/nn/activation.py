"""Drop-in twins of torch/nn/modules/activation.py and dropout.py."""

from __future__ import annotations

import torch

from scratch import functional as F
from scratch.nn._twin import Twin

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax", "Dropout"]


class ReLU(Twin, torch.nn.ReLU):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.relu(input, inplace=self.inplace, backend=self.backend)


class LeakyReLU(Twin, torch.nn.LeakyReLU):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(input, self.negative_slope, self.inplace, backend=self.backend)


class Sigmoid(Twin, torch.nn.Sigmoid):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.sigmoid(input, backend=self.backend)


class Tanh(Twin, torch.nn.Tanh):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.tanh(input, backend=self.backend)


class GELU(Twin, torch.nn.GELU):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.gelu(input, approximate=self.approximate, backend=self.backend)


class Softmax(Twin, torch.nn.Softmax):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.softmax(input, self.dim, _stacklevel=5, backend=self.backend)


class LogSoftmax(Twin, torch.nn.LogSoftmax):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(input, self.dim, _stacklevel=5, backend=self.backend)


class Dropout(Twin, torch.nn.Dropout):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.dropout(input, self.p, self.training, self.inplace, backend=self.backend)
