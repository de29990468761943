"""Drop-in modules: torch.nn's classes, signatures and state_dict keys, scratch's forward/backward.

`TWINS` maps each supported torch.nn class to its scratch twin (used by `scratch.swap`).
"""

from scratch.nn._twin import TWINS, Twin
from scratch.nn.activation import GELU, Dropout, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from scratch.nn.batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from scratch.nn.conv import Conv1d, Conv2d, Conv3d
from scratch.nn.linear import Flatten, Linear
from scratch.nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from scratch.nn.pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
)

__all__ = [
    # activation.py
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "GELU",
    "Softmax",
    "LogSoftmax",
    "Dropout",
    # batchnorm.py
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    # conv.py
    "Conv1d",
    "Conv2d",
    "Conv3d",
    # linear.py
    "Linear",
    "Flatten",
    # loss.py
    "CrossEntropyLoss",
    "NLLLoss",
    "MSELoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    # pooling.py
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    # _twin.py
    "TWINS",
    "Twin",
]
