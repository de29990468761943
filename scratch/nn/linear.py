"""Drop-in twins of torch/nn/modules/linear.py and flatten.py."""

from __future__ import annotations

import torch

from scratch import functional as F
from scratch.nn._twin import Twin

__all__ = ["Linear", "Flatten"]


class Linear(Twin, torch.nn.Linear):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.linear(input, self.weight, self.bias, backend=self.backend)


class Flatten(Twin, torch.nn.Flatten):
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return F.flatten(input, self.start_dim, self.end_dim, backend=self.backend)
