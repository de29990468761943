"""A NumPy Conv2d layer class, as a student writes it: forward(x) and backward(grad_y).

Built with torch.nn.Conv2d's arguments (zeros padding, groups=1 only); weight `W` (C_out, C_in,
kH, kW) and bias `b`, their gradients in `dW` and `db` after backward. Vectorized im2col.
"""

import numpy as np


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class Conv2d:
    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        padding_mode="zeros",
    ):
        if groups != 1 or padding_mode != "zeros" or isinstance(padding, str):
            raise NotImplementedError("only groups=1, zeros padding given as numbers")
        self.k, self.s = _pair(kernel_size), _pair(stride)
        self.p, self.d = _pair(padding), _pair(dilation)
        self.W = np.random.randn(out_channels, in_channels, *self.k) * 0.1
        self.b = np.zeros(out_channels) if bias else None

    def _windows(self, xp, out_h, out_w):
        # (N, C, out_h, out_w, kH, kW): a strided view of the padded input, no copy
        n, c = xp.shape[:2]
        sn, sc, sh, sw = xp.strides
        shape = (n, c, out_h, out_w, *self.k)
        strides = (sn, sc, sh * self.s[0], sw * self.s[1], sh * self.d[0], sw * self.d[1])
        return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)

    def forward(self, x):
        n, c, h, w = x.shape  # batched NCHW only: an unbatched input raises here
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.k, self.s, self.p, self.d
        out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        self.cache = (x.shape, xp.shape, out_h, out_w, np.ascontiguousarray(xp))
        cols = self._windows(self.cache[4], out_h, out_w)
        y = np.einsum("nchwij,ocij->nohw", cols, self.W, optimize=True)
        return y if self.b is None else y + self.b[None, :, None, None]

    def _scatter(self, dxp, dcols):
        # add every tap's contribution back into the padded input gradient
        kh, kw = self.k
        out_h, out_w = dcols.shape[2:4]
        for i in range(kh):
            for j in range(kw):
                r, q = i * self.d[0], j * self.d[1]
                dxp[:, :, r : r + self.s[0] * out_h : self.s[0],
                    q : q + self.s[1] * out_w : self.s[1]] += dcols[..., i, j]  # fmt: skip

    def backward(self, grad_y):
        x_shape, xp_shape, out_h, out_w, xp = self.cache
        cols = self._windows(xp, out_h, out_w)
        self.dW = np.einsum("nchwij,nohw->ocij", cols, grad_y, optimize=True)
        self.db = grad_y.sum(axis=(0, 2, 3)) if self.b is not None else None
        dcols = np.einsum("nohw,ocij->nchwij", grad_y, self.W, optimize=True)
        dxp = np.zeros(xp_shape, dtype=grad_y.dtype)
        self._scatter(dxp, dcols)
        (ph, pw), (h, w) = self.p, x_shape[2:]
        return dxp[:, :, ph : ph + h, pw : pw + w]
