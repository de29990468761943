"""NumPy layer classes and function pairs with the typical bugs (and their corrected twins).

Each `make_*` takes the bug's name (None: correct) and returns what a student hands in.
"""

import types

import numpy as np

from scratch.verify.examples.conv_numpy import Conv2d as GoodConv
from scratch.verify.examples.conv_numpy_broken import Conv2d as BrokenConv


def make_conv(bug=None):
    """Conv2d layer classes: "padding-edge", "stride-backward", "hw-swap", "grad-mean"."""

    class Conv(BrokenConv if bug == "stride-backward" else GoodConv):
        def forward(self, x):
            if bug == "padding-edge":  # pads with the edge values instead of zeros
                pad = ((0, 0), (0, 0), (self.p[0],) * 2, (self.p[1],) * 2)
                xp = np.pad(x, pad, mode="edge")
                out_h, out_w = (
                    (xp.shape[2] - self.k[0]) // self.s[0] + 1,
                    (xp.shape[3] - self.k[1]) // self.s[1] + 1,
                )
                self.cache = (x.shape, xp.shape, out_h, out_w, np.ascontiguousarray(xp))
                cols = self._windows(self.cache[4], out_h, out_w)
                y = np.einsum("nchwij,ocij->nohw", cols, self.W)
                return y + self.b[None, :, None, None]
            y = super().forward(x)
            if bug == "hw-swap":  # output laid out (N, C, W, H)
                return np.ascontiguousarray(y.swapaxes(2, 3))
            return y

        def backward(self, grad_y):
            if bug == "hw-swap":
                grad_y = grad_y.swapaxes(2, 3)
            gx = super().backward(grad_y)
            if bug == "grad-mean":
                self.dW = self.dW / grad_y.shape[0]
            return gx

    return Conv


def _windows(x, k, s):
    n, c, h, w = x.shape
    out_h, out_w = (h - k) // s + 1, (w - k) // s + 1
    sn, sc, sh, sw = x.strides
    view = np.lib.stride_tricks.as_strided(
        x, (n, c, out_h, out_w, k, k), (sn, sc, sh * s, sw * s, sh, sw)
    )
    return view.reshape(n, c, out_h, out_w, k * k)


def make_maxpool(bug=None):
    """MaxPool2d(k) layer classes: "ties-split" (shared between maxima), "ties-last"."""

    class MaxPool:
        def __init__(
            self,
            kernel_size,
            stride=None,
            padding=0,
            dilation=1,
            return_indices=False,
            ceil_mode=False,
        ):
            if padding or dilation != 1 or return_indices or ceil_mode:
                raise NotImplementedError("only kernel_size and stride")
            self.k, self.s = kernel_size, stride or kernel_size

        def forward(self, x):
            self.x = x
            return _windows(x, self.k, self.s).max(-1)

        def backward(self, grad_y):
            win = _windows(self.x, self.k, self.s)  # (N, C, oh, ow, k*k)
            if bug == "ties-split":
                mask = win == win.max(-1, keepdims=True)
                mask = mask / mask.sum(-1, keepdims=True)
            else:
                pick = (
                    win.argmax(-1)
                    if bug != "ties-last"
                    else win.shape[-1] - 1 - np.flip(win, -1).argmax(-1)
                )
                mask = np.eye(win.shape[-1])[pick]
            dx = np.zeros_like(self.x)
            k, s = self.k, self.s
            oh, ow = win.shape[2:4]
            for t in range(k * k):  # scatter each tap back (loops over taps, not pixels)
                i, j = divmod(t, k)
                dx[:, :, i : i + s * oh : s, j : j + s * ow : s] += grad_y * mask[..., t]
            return dx

    return MaxPool


def make_softmax(bug=None):
    """Softmax(dim=1) layer classes: "no-max" (exp overflows on large logits)."""

    class Softmax:
        def __init__(self, dim=None):
            self.dim = dim

        def forward(self, x):
            z = x if bug == "no-max" else x - x.max(self.dim, keepdims=True)
            with np.errstate(over="ignore", invalid="ignore"):
                e = np.exp(z)
                self.y = e / e.sum(self.dim, keepdims=True)
            return self.y

        def backward(self, grad_y):
            y = self.y
            return y * (grad_y - (grad_y * y).sum(self.dim, keepdims=True))

    return Softmax


def make_cross_entropy_pair(bug=None):
    """CrossEntropyLoss function pairs (logits, index targets): "no-mean" (grad not / N)."""

    def forward(x, y):
        z = x - x.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        n = x.shape[0]
        return -logp[np.arange(n), y].mean(), (logp, y)

    def backward(dout, cache):
        logp, y = cache
        n = logp.shape[0]
        dx = np.exp(logp)
        dx[np.arange(n), y] -= 1
        return dx * dout if bug == "no-mean" else dx * dout / n

    return types.SimpleNamespace(forward=forward, backward=backward)


def make_mse(bug=None):
    """MSELoss layer classes, backward() without arguments: "half" (the factor 2 dropped)."""

    class MSE:
        def __init__(self, reduction="mean"):
            if reduction != "mean":
                raise NotImplementedError(reduction)

        def forward(self, x, target):
            self.diff = x - target
            return (self.diff**2).mean()

        def backward(self):
            scale = 1 if bug == "half" else 2
            return scale * self.diff / self.diff.size

    return MSE


def make_relu(bug=None):
    """ReLU layer classes: "kink" (gradient 1 at 0), "inplace" (writes into its input)."""

    class ReLU:
        def __init__(self, inplace=False):
            pass

        def forward(self, x):
            self.x = x.copy()
            if bug == "inplace":
                x[x < 0] = 0
                return x.copy()
            return np.maximum(x, 0)

        def backward(self, grad_y):
            return grad_y * ((self.x >= 0) if bug == "kink" else (self.x > 0))

    return ReLU


class ReturnsList:
    """forward returns a Python list: the wrong type."""

    def __init__(self, inplace=False):
        pass

    def forward(self, x):
        return x.tolist()

    def backward(self, grad_y):
        return grad_y


class Raises:
    def __init__(self, inplace=False):
        pass

    def forward(self, x):
        raise RuntimeError("not implemented yet")

    def backward(self, grad_y):
        return grad_y


class WrongShape:
    """forward drops the last column."""

    def __init__(self, inplace=False):
        pass

    def forward(self, x):
        return np.maximum(x, 0)[..., :-1]

    def backward(self, grad_y):
        return grad_y
