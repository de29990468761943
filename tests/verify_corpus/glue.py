"""The README's glue snippets, run against small student-style layers (they must pass)."""

import numpy as np

from scratch.verify.examples.conv_numpy import Conv2d


def conv_forward_naive(x, w, b, conv_param):
    """A CS231n-style conv: conv_param = {"stride": s, "pad": p}, returns (out, cache)."""
    layer = Conv2d(w.shape[1], w.shape[0], w.shape[2:], conv_param["stride"], conv_param["pad"])
    layer.W, layer.b = w, b
    return layer.forward(x), layer


def conv_backward_naive(dout, cache):
    dx = cache.backward(dout)
    return dx, cache.dW, cache.db


# --- the README's glue, as written there
def forward(x, w, b, stride=1, padding=0):  # no dilation/groups keyword: those are unsupported
    if not (isinstance(stride, int) and isinstance(padding, int)):
        raise NotImplementedError("int stride and padding only")  # reported unsupported
    return conv_forward_naive(x, w, b, {"stride": stride, "pad": padding})


def backward(dout, cache):
    return conv_backward_naive(dout, cache)  # (dx, dw, db)


class Dense:
    """A student's layer that applies its own SGD step in backward."""

    def __init__(self, in_features, out_features, bias=True):
        self.W, self.b, self.lr = np.zeros((out_features, in_features)), np.zeros(out_features), 0.1

    def forward(self, x):
        n, _ = x.shape  # batched only: unbatched inputs are reported unsupported
        self.x = x
        return x @ self.W.T + self.b

    def backward(self, dout):
        dx = dout @ self.W
        self.W -= self.lr * (dout.T @ self.x)
        self.b -= self.lr * dout.sum(0)
        return dx


class Stepped(Dense):
    def backward(self, dout):
        W, b = self.W.copy(), None if self.b is None else self.b.copy()
        dx = super().backward(dout)
        self.dW = (W - self.W) / self.lr
        if b is not None:  # bias=False: no bias, no gradient
            self.db = (b - self.b) / self.lr
        return dx


class CrossEntropy:
    """A student's loss on probabilities: forward(p, y) -> loss, backward() -> dL/dp."""

    def __init__(self, *args, **kwargs):
        pass

    def forward(self, p, y):
        self.p, self.y = p, y
        return -np.log(p[np.arange(len(y)), y]).mean()

    def backward(self):
        dp = np.zeros_like(self.p)
        dp[np.arange(len(self.y)), self.y] = -1 / self.p[np.arange(len(self.y)), self.y]
        return dp / len(self.y)


class FromLogits(CrossEntropy):
    def forward(self, x, y):
        e = np.exp(x - x.max(1, keepdims=True))
        self.p = e / e.sum(1, keepdims=True)
        return super().forward(self.p, y)

    def backward(self):
        dp = super().backward()
        return self.p * (dp - (dp * self.p).sum(1, keepdims=True))
