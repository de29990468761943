"""Linear layers with the typical bugs, in every convention: `build(bug, convention)`.

`BUGS` maps each bug to the hint it must raise (None: the corrected twin, which must pass).
The arithmetic is shared (NumPy arrays or torch tensors alike); each convention wraps it.
"""

import types

import numpy as np
import torch

BUGS = {
    None: None,
    "grad-mean": "factor",  # grad_weight divided by N: an extra mean
    "sign": "sign",  # grad_x negated
    "grad-255": "factor",  # grad_x scaled by 255 (an input normalisation leaking in)
    "grad-weight-transposed": "transposed",  # grad_weight returned (in, out)
    "bias-ignored": "bias",
    "bias-twice": "bias",
    "zero-grad": "zero",  # grad_x never computed
    "normalised": "normalised",  # grad_x divided by its maximum
}
CONVENTIONS = ("layer", "layer-in-out", "pair", "function", "module", "factory")


def forward(x, W, b, bug=None):
    y = x @ W.T
    if b is not None and bug != "bias-ignored":
        y = y + b * (2 if bug == "bias-twice" else 1)
    return y


def backward(gy, x, W, b, bug=None):
    g2, x2 = gy.reshape(-1, W.shape[0]), x.reshape(-1, W.shape[1])
    gx, gW = gy @ W, g2.T @ x2
    gb = g2.sum(0) if b is not None else None
    if bug == "grad-mean":
        gW = gW / x2.shape[0]
    if bug == "sign":
        gx = -gx
    if bug == "grad-255":
        gx = gx * 255
    if bug == "grad-weight-transposed":
        gW = gW.T
    if bug == "zero-grad":
        gx = gx * 0
    if bug == "normalised":
        gx = gx / abs(gx).max()
    return gx, gW, gb


def layer_class(bug, in_out=False):
    class Dense:
        def __init__(self, in_features, out_features, bias=True):
            shape = (in_features, out_features) if in_out else (out_features, in_features)
            self.W = np.random.randn(*shape)
            self.b = np.zeros(out_features) if bias else None

        def forward(self, x):
            self.x = x
            return forward(x, self.W.T if in_out else self.W, self.b, bug)

        def backward(self, grad_y):
            W = self.W.T if in_out else self.W
            gx, gW, self.db = backward(grad_y, self.x, W, self.b, bug)
            self.dW = gW.T if in_out else gW
            return gx

    return Dense


def pair(bug):
    def linear_forward(x, w, b):
        return forward(x, w, b, bug), (x, w, b)

    def linear_backward(dout, cache):
        return backward(dout, *cache, bug)

    return types.SimpleNamespace(forward=linear_forward, backward=linear_backward)


def function(bug):
    class LinearFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight, bias):
            ctx.save_for_backward(x, weight, bias)
            return forward(x, weight, bias, bug)

        @staticmethod
        def backward(ctx, grad_y):
            return backward(grad_y, *ctx.saved_tensors, bug)

    return LinearFunction


def module(bug):
    fn = function(bug)

    class MyLinear(torch.nn.Module):
        def __init__(self, in_features, out_features, bias=True):
            super().__init__()
            self.W = torch.nn.Parameter(torch.randn(out_features, in_features))
            self.b = torch.nn.Parameter(torch.zeros(out_features)) if bias else None

        def forward(self, x):
            return fn.apply(x, self.W, self.b)

    return MyLinear


def factory(bug):
    Dense = layer_class(bug)

    class Affine(Dense):  # a student's class with other constructor names
        def __init__(self, n_in, n_out, use_bias=True):
            super().__init__(n_in, n_out, use_bias)

    def make(in_features, out_features, bias=True):
        return Affine(n_in=in_features, n_out=out_features, use_bias=bias)

    return make


def build(bug, convention):
    """The layer with `bug` in `convention`, and the verify options it needs."""
    if convention == "layer-in-out":
        return layer_class(bug, in_out=True), {"weight_layout": "in-out"}
    maker = {
        "layer": layer_class,
        "pair": pair,
        "function": function,
        "module": module,
        "factory": factory,
    }[convention]
    return maker(bug), {}
