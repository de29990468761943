"""Classic image kernels, applied through the scratch convolution (depthwise, `padding='same'`).

Builders return float64 NumPy arrays of shape (kH, kW). `filter2d` applies one kernel to every
channel on its own (a depthwise `scratch.functional.conv2d`, `groups=C`) with torch's
`padding='same'` and any `padding_mode`, on the layouts students use: a 2-D array (H, W), an
image (H, W, C) or a batch (N, C, H, W). A NumPy image comes back as NumPy, a tensor as a tensor
(and gradients flow through the scratch backward).

Like every torch convolution this is a *correlation* (the kernel is not flipped). It equals
`scipy.ndimage.correlate(x, kernel, mode=SCIPY_MODES[padding_mode], cval=0.0,
origin=scipy_origin(kernel.shape))` channel by channel: torch's 'reflect' is scipy's 'mirror'
(d c b | a b c d), 'replicate' is 'nearest', 'circular' is 'wrap' and 'zeros' is 'constant'
with `cval=0`; for an even kernel size torch's 'same' puts the extra padding at the end, which is
scipy's `origin=-1` along that axis.
"""

from __future__ import annotations

import matplotlib.cbook as cbook
import matplotlib.image as mpimg
import numpy as np
import torch

import scratch.functional as SF
from scratch.kernels import DEFAULT_BACKEND, Backend

__all__ = [
    "LAYOUTS",
    "LUMA_601",
    "SCIPY_MODES",
    "box_kernel",
    "derivative_kernels",
    "edge_kernel",
    "filter2d",
    "gaussian_kernel",
    "gradient_magnitude",
    "grayscale",
    "grayscale_mean",
    "laplacian_kernel",
    "scipy_origin",
    "sharpen_kernel",
    "sample_photo",
    "sobel_kernels",
]

SCIPY_MODES = {"zeros": "constant", "reflect": "mirror", "replicate": "nearest", "circular": "wrap"}
LAYOUTS = ("HW", "HWC", "CHW", "NCHW")
LUMA_601 = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma weights (PIL's convert('L'), OpenCV)

Image = np.ndarray | torch.Tensor


def sample_photo() -> np.ndarray:
    """matplotlib's bundled `grace_hopper.jpg` (offline) as float64 in [0, 1]. (600, 512, 3)."""
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return mpimg.imread(f, format="jpg").astype(np.float64) / 255.0


# --- Kernel builders ------------------------------------------------------------------------------


def gaussian_kernel(
    size: int, sigma: float | None = None, *, variance: float | None = None
) -> np.ndarray:
    """An isotropic Gaussian, `size` x `size`, summing to 1; give `sigma` or `variance`.

    Taps sit at offsets `i - (size - 1) / 2` from the centre, so an even size is centred between
    the two middle pixels. With `size = 2 * int(4 * sigma + 0.5) + 1` and `padding_mode` mapped,
    `filter2d` with it equals `scipy.ndimage.gaussian_filter(x, sigma)` (truncate=4).
    """
    if (sigma is None) == (variance is None):
        raise ValueError("gaussian_kernel: give exactly one of sigma or variance")
    var = float(variance) if variance is not None else float(sigma) ** 2
    if not var > 0:
        raise ValueError(f"gaussian_kernel: the variance must be positive, got {var}")
    _check_size(size, "size")
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-0.5 * offsets**2 / var)
    g /= g.sum()
    return np.outer(g, g)  # separable: exp(-(x² + y²) / 2σ²) normalised


def laplacian_kernel(kind: str = "4") -> np.ndarray:
    """A 3 x 3 Laplacian: '4' (4-neighbour), '8' (8-neighbour) or 'smoothed' (isotropic).

    '4' is `scipy.ndimage.laplace`'s kernel; '8' sums all eight neighbours minus 8x the centre
    (it reads 3x the Laplacian of a smooth image); 'smoothed' is half the 4-neighbour one plus a
    quarter of the diagonal one, (1/4)[[1, 2, 1], [2, -12, 2], [1, 2, 1]]: scaled like the true
    Laplacian, with an error term that does not depend on direction.
    """
    kernels = {
        "4": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
        "8": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
        "smoothed": [[0.25, 0.5, 0.25], [0.5, -3, 0.5], [0.25, 0.5, 0.25]],
    }
    if kind not in kernels:
        raise ValueError(f"laplacian_kernel: kind must be one of {tuple(kernels)}, got {kind!r}")
    return np.array(kernels[kind], dtype=np.float64)


def box_kernel(size: int | tuple[int, int]) -> np.ndarray:
    """A box blur (mean over a window) of `size` or `(kH, kW)`; `scipy.ndimage.uniform_filter`."""
    kh, kw = (size, size) if isinstance(size, int) else tuple(size)
    _check_size(kh, "size")
    _check_size(kw, "size")
    return np.full((kh, kw), 1.0 / (kh * kw))


def sharpen_kernel() -> np.ndarray:
    """The classic sharpen: 5x the centre minus its four neighbours (the image minus its L4)."""
    return np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64)


def edge_kernel() -> np.ndarray:
    """The 8-neighbour edge detector: 8x the centre minus its eight neighbours (minus L8)."""
    return -laplacian_kernel("8")


def derivative_kernels() -> tuple[np.ndarray, np.ndarray]:
    """Central differences `(d/dx, d/dy)`: `[[-1, 0, 1]]` (1 x 3) and its transpose (3 x 1).

    gx[i, j] = x[i, j + 1] - x[i, j - 1] (twice the central derivative), gy likewise down rows.
    """
    dx = np.array([[-1.0, 0.0, 1.0]])
    return dx, dx.T.copy()


def sobel_kernels() -> tuple[np.ndarray, np.ndarray]:
    """Sobel `(d/dx, d/dy)`: [1, 2, 1] smoothing across, [-1, 0, 1] along; `scipy.ndimage.sobel`
    with `axis=1` and `axis=0` respectively (same signs)."""
    sx = np.outer([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0])
    return sx, sx.T.copy()


def _check_size(size: int, name: str) -> None:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"{name} must be a positive int, got {size!r}")


# --- Applying them ----------------------------------------------------------------------------


def scipy_origin(shape: tuple[int, ...]) -> tuple[int, ...]:
    """scipy.ndimage's `origin` for torch's 'same' padding: -1 on even kernel sizes, else 0."""
    return tuple(-1 if k % 2 == 0 else 0 for k in shape)


def filter2d(
    image: Image,
    kernel: np.ndarray | torch.Tensor,
    *,
    padding_mode: str = "zeros",
    layout: str | None = None,
    backend: Backend = DEFAULT_BACKEND,
) -> Image:
    """Correlate every channel of `image` with `kernel`: same size out, torch's 'same' padding.

    Shapes: image (H, W), (H, W, C), (C, H, W) or (N, C, H, W); kernel (kH, kW) -> image's shape.
    `layout` defaults to 'HW', 'HWC', 'NCHW' by rank (say 'CHW' for a channels-first image).
    Equals `scipy.ndimage.correlate(channel, kernel, mode=SCIPY_MODES[padding_mode], cval=0,
    origin=scipy_origin(kernel.shape))` per channel. Integer images are filtered in float64.
    """
    x, restore = _to_nchw(image, layout)  # (N, C, H, W)
    weight = torch.as_tensor(kernel).to(x.dtype)
    if weight.dim() != 2:
        raise ValueError(f"filter2d: kernel must be 2-d (kH, kW), got shape {tuple(weight.shape)}")
    c = x.shape[1]
    weight = weight.expand(c, 1, *weight.shape)  # (C, 1, kH, kW): one filter per channel
    y = SF.conv2d(x, weight, padding="same", groups=c, padding_mode=padding_mode, backend=backend)
    return restore(y)


def _to_nchw(image: Image, layout: str | None):
    """(image as a float (N, C, H, W) tensor, a function taking a result back to image's form)."""
    is_numpy = not isinstance(image, torch.Tensor)
    x = torch.from_numpy(np.asarray(image)) if is_numpy else image
    if not x.is_floating_point():
        x = x.to(torch.float64)
    layout = layout or {2: "HW", 3: "HWC", 4: "NCHW"}.get(x.dim())
    if layout not in LAYOUTS or len(layout) != x.dim():
        raise ValueError(
            f"image of shape {tuple(x.shape)} does not fit layout {layout!r} "
            f"(one of {LAYOUTS}, with as many letters as the image has dims)"
        )
    to_nchw = {
        "HW": lambda t: t[None, None],
        "HWC": lambda t: t.permute(2, 0, 1)[None],
        "CHW": lambda t: t[None],
        "NCHW": lambda t: t,
    }
    back = {
        "HW": lambda t: t[0, 0],
        "HWC": lambda t: t[0].permute(1, 2, 0),
        "CHW": lambda t: t[0],
        "NCHW": lambda t: t,
    }

    def restore(y: torch.Tensor) -> Image:
        y = back[layout](y)
        return y.detach().numpy() if is_numpy else y

    return to_nchw[layout](x), restore


def gradient_magnitude(
    image: Image,
    *,
    kind: str = "central",
    padding_mode: str = "replicate",
    layout: str | None = None,
    backend: Backend = DEFAULT_BACKEND,
) -> Image:
    """`sqrt(gx² + gy²)` from the central-difference ('central') or the 'sobel' kernels.

    Shapes: as `filter2d`. With kind='sobel' it equals
    `np.hypot(scipy.ndimage.sobel(x, 0, mode=m), scipy.ndimage.sobel(x, 1, mode=m))`.
    """
    builders = {"central": derivative_kernels, "sobel": sobel_kernels}
    if kind not in builders:
        raise ValueError(f"gradient_magnitude: kind must be one of {tuple(builders)}, got {kind!r}")
    kx, ky = builders[kind]()
    opts = {"padding_mode": padding_mode, "layout": layout, "backend": backend}
    gx, gy = filter2d(image, kx, **opts), filter2d(image, ky, **opts)
    if isinstance(gx, torch.Tensor):
        return torch.hypot(gx, gy)
    return np.hypot(gx, gy)


def grayscale(image: Image, weights: tuple[float, float, float] = LUMA_601) -> Image:
    """Luma: the weighted sum of R, G, B (default BT.601: 0.299 R + 0.587 G + 0.114 B).

    Shapes: (H, W, 3) -> (H, W). Give skimage's BT.709 weights (0.2125, 0.7154, 0.0721) to
    match `skimage.color.rgb2gray`.
    """
    x = _rgb(image, "grayscale")
    w = np.asarray(weights, dtype=np.float64)
    if isinstance(x, torch.Tensor):
        return x @ torch.as_tensor(w, dtype=x.dtype)
    return x @ w


def grayscale_mean(image: Image) -> Image:
    """The plain channel mean (R + G + B) / 3, not luma. Shapes: (H, W, 3) -> (H, W)."""
    x = _rgb(image, "grayscale_mean")
    return x.mean(-1)


def _rgb(image: Image, name: str) -> Image:
    """`image` as a float (H, W, 3) array or tensor; a clear error for anything else."""
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{name}: expected an (H, W, 3) RGB image, got shape {tuple(image.shape)}")
    if isinstance(image, torch.Tensor):
        return image if image.is_floating_point() else image.to(torch.float64)
    image = np.asarray(image)
    return image if np.issubdtype(image.dtype, np.floating) else image.astype(np.float64)
