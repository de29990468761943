"""The product's own layers handed to `scratch verify` through each convention (all must pass)."""

import types

import torch

import scratch.functional as SF
import scratch.nn
from scratch.kernels import kernels


def linear_pair(backend: str):
    """Our linear kernels as a function pair (NumPy arrays or torch tensors)."""
    k = kernels(backend)
    return types.SimpleNamespace(
        forward=lambda x, w, b: k.linear_forward(x, w, b),
        backward=lambda grad_y, cache: k.linear_backward(cache, grad_y, (True, True, True)),
    )


class LinearLayer:
    """Our NumPy linear kernels as a layer class (weight W, bias b, grads dW, db)."""

    def __init__(self, in_features, out_features, bias=True):
        self.W, self.b = torch.zeros(out_features, in_features).numpy(), None
        if bias:
            self.b = torch.zeros(out_features).numpy()

    def forward(self, x):
        y, self.cache = kernels("numpy").linear_forward(x, self.W, self.b)
        return y

    def backward(self, grad_y):
        grad_x, self.dW, self.db = kernels("numpy").linear_backward(
            self.cache, grad_y, (True, True, True)
        )
        return grad_x


class LinearFunction(torch.autograd.Function):
    """Our torch linear kernels as an autograd.Function: Fn.apply(x, weight, bias)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        y, ctx.cache = kernels("torch").linear_forward(x, weight, bias)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        return kernels("torch").linear_backward(ctx.cache, grad_y, (True, True, True))


class NHWCConv:
    """scratch.functional.conv2d as a torch layer class in NHWC, weight (kH, kW, in, out)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        self.weight = torch.zeros(kernel_size, kernel_size, in_channels, out_channels)
        self.bias = torch.zeros(out_channels) if bias else None
        self.stride, self.padding = stride, padding

    def forward(self, x):
        self.x = x.detach().requires_grad_()
        self.w = self.weight.detach().requires_grad_()
        self.b = self.bias.detach().requires_grad_() if self.bias is not None else None
        y = SF.conv2d(
            self.x.permute(0, 3, 1, 2),
            self.w.permute(3, 2, 0, 1),
            self.b,
            self.stride,
            self.padding,
            backend="torch",
        )
        self.y = y.permute(0, 2, 3, 1)
        return self.y.detach()

    def backward(self, grad_y):
        wrt = [self.x, self.w] + ([self.b] if self.b is not None else [])
        grads = torch.autograd.grad(self.y, wrt, grad_y, retain_graph=True)  # gradcheck: often
        self.grad_weight = grads[1]
        self.grad_bias = grads[2] if self.b is not None else None
        return grads[0]


def make_conv(**torch_kwargs):
    """A factory: our module, on the torch backend."""
    return scratch.nn.Conv2d(**torch_kwargs, backend="torch")
