"""Image kernels through the scratch conv, against scipy.ndimage and hand-worked fixtures."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from reference import filters as F
from scratch.kernels import BACKENDS

TOL = {"rtol": 1e-10, "atol": 1e-12}
# torch padding_mode -> scipy.ndimage mode, written out here rather than read from the code.
MODES = {"zeros": "constant", "reflect": "mirror", "replicate": "nearest", "circular": "wrap"}
KERNEL_SHAPES = [(3, 3), (4, 4), (2, 5), (5, 2), (1, 3)]


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, **TOL)


@pytest.fixture
def image(seed):
    return np.random.default_rng(seed).random((13, 17))


# --- Hand-worked fixtures ---------------------------------------------------------------


M3 = np.arange(1.0, 10.0).reshape(3, 3)  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_correlation_not_convolution_on_a_3x3():
    # k[0, 0] = 1 reads x[i-1, j-1], k[2, 2] = -1 reads x[i+1, j+1]; zero padding.
    kernel = np.array([[1.0, 0, 0], [0, 0, 0], [0, 0, -1]])
    expected = [[-5, -6, 0], [-8, -8, 2], [0, 4, 5]]
    close(F.filter2d(M3, kernel), expected)


def test_laplacian_of_a_3x3_with_replicated_edges():
    # up + down + left + right - 4 x, edge pixels repeated outward: a ramp's Laplacian lives only
    # at the border.
    expected = [[4, 3, 2], [1, 0, -1], [-2, -3, -4]]
    close(F.filter2d(M3, F.laplacian_kernel("4"), padding_mode="replicate"), expected)


def test_box_blur_of_a_single_bright_pixel():
    x = np.zeros((4, 5))
    x[1, 1] = 9.0
    expected = np.zeros((4, 5))
    expected[0:3, 0:3] = 1.0  # 9 spread evenly over the 3x3 windows that see it
    close(F.filter2d(x, F.box_kernel(3)), expected)


def test_even_box_blur_pads_at_the_end():
    # 2x2 box on [[1, 2], [3, 4]]: torch's 'same' adds the one row/column of zeros at the end.
    expected = [[(1 + 2 + 3 + 4) / 4, (2 + 4) / 4], [(3 + 4) / 4, 4 / 4]]
    close(F.filter2d(np.array([[1.0, 2.0], [3.0, 4.0]]), F.box_kernel(2)), expected)


@pytest.mark.parametrize(
    "mode, expected",
    [("zeros", [2, 2, 2, -3]), ("circular", [-2, 2, 2, -2]), ("reflect", [0, 2, 2, 0]),
     ("replicate", [1, 2, 2, 1])],
)  # fmt: skip
def test_central_difference_at_the_borders(mode, expected):
    # gx[j] = x[j + 1] - x[j - 1] on [1, 2, 3, 4]; the border reads depend on the mode.
    dx, _ = F.derivative_kernels()
    close(F.filter2d(np.array([[1.0, 2.0, 3.0, 4.0]]), dx, padding_mode=mode)[0], expected)


def test_gaussian_kernel_even_and_odd():
    # size 4, sigma 1: taps at -1.5, -0.5, 0.5, 1.5.
    g = np.exp([-1.125, -0.125, -0.125, -1.125])
    close(F.gaussian_kernel(4, 1.0), np.outer(g, g) / g.sum() ** 2)
    g = np.exp([-2.0, -0.5, 0.0, -0.5, -2.0])  # size 5, sigma 1: taps at -2 .. 2
    close(F.gaussian_kernel(5, variance=1.0), np.outer(g, g) / g.sum() ** 2)
    k = F.gaussian_kernel(6, 1.3)
    assert k.sum() == pytest.approx(1.0, abs=1e-15)
    close(k, k[::-1, ::-1])
    close(F.gaussian_kernel(7, variance=2.25), F.gaussian_kernel(7, 1.5))


@pytest.mark.parametrize("kind, value", [("4", 4.0), ("8", 12.0), ("smoothed", 4.0)])
def test_laplacians_on_polynomials(kind, value):
    # Each kills constants and ramps; on x² + y² (true Laplacian 4) the 8-neighbour one reads
    # 4 * 1 (edges) + 4 * 2 (corners) = 12 and the others 4.
    i, j = np.mgrid[0:6, 0:7].astype(float)
    kernel = F.laplacian_kernel(kind)
    inner = (slice(1, -1), slice(1, -1))
    close(F.filter2d(3.0 + 2 * i - j, kernel)[inner], np.zeros((4, 5)))
    close(F.filter2d(i**2 + j**2, kernel)[inner], np.full((4, 5), value))


def test_sharpen_and_edge_kernels(image):
    neighbours = F.filter2d(image, np.array([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    close(F.filter2d(image, F.sharpen_kernel()), 5 * image - neighbours)
    ring = F.filter2d(image, np.array([[1.0, 1, 1], [1, 0, 1], [1, 1, 1]]))
    close(F.filter2d(image, F.edge_kernel()), 8 * image - ring)


def test_grayscale_weights():
    rgb = np.array([[[1.0, 0, 0], [0, 1, 0]], [[0, 0, 1], [0.5, 0.5, 0.5]]])  # (2, 2, 3)
    close(F.grayscale(rgb), [[0.299, 0.587], [0.114, 0.5]])
    close(F.grayscale_mean(rgb), [[1 / 3, 1 / 3], [1 / 3, 0.5]])
    assert F.grayscale(np.full((1, 1, 3), 255, dtype=np.uint8))[0, 0] == pytest.approx(255.0)
    close(F.grayscale(torch.from_numpy(rgb)).numpy(), F.grayscale(rgb))


# --- Against scipy.ndimage ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", KERNEL_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_filter2d_is_scipy_correlate(image, mode, shape, gen):
    kernel = torch.randn(shape, generator=gen, dtype=torch.float64).numpy()
    origin = [-1 if k % 2 == 0 else 0 for k in shape]  # torch 'same': the extra pad at the end
    expected = ndi.correlate(image, kernel, mode=MODES[mode], cval=0.0, origin=origin)
    for backend in BACKENDS:
        close(F.filter2d(image, kernel, padding_mode=mode, backend=backend), expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sigma", [0.7, 1.5])
def test_gaussian_is_scipy_gaussian_filter(image, mode, sigma):
    size = 2 * int(4.0 * sigma + 0.5) + 1  # scipy's truncate=4 radius
    got = F.filter2d(image, F.gaussian_kernel(size, sigma), padding_mode=mode)
    close(got, ndi.gaussian_filter(image, sigma, mode=MODES[mode], cval=0.0))


@pytest.mark.parametrize("mode", MODES)
def test_sobel_laplace_uniform_are_scipy(image, mode):
    m = MODES[mode]
    sx, sy = F.sobel_kernels()
    close(F.filter2d(image, sx, padding_mode=mode), ndi.sobel(image, axis=1, mode=m))
    close(F.filter2d(image, sy, padding_mode=mode), ndi.sobel(image, axis=0, mode=m))
    close(F.filter2d(image, F.laplacian_kernel("4"), padding_mode=mode), ndi.laplace(image, mode=m))
    for size, origin in ((3, 0), (4, -1), ((2, 5), (-1, 0))):
        expected = ndi.uniform_filter(image, size=size, mode=m, origin=origin)
        close(F.filter2d(image, F.box_kernel(size), padding_mode=mode), expected)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_magnitude_is_scipy(image, mode):
    m = MODES[mode]
    expected = np.hypot(ndi.sobel(image, 0, mode=m), ndi.sobel(image, 1, mode=m))
    close(F.gradient_magnitude(image, kind="sobel", padding_mode=mode), expected)
    gx = ndi.correlate1d(image, [-1.0, 0.0, 1.0], axis=1, mode=m)
    gy = ndi.correlate1d(image, [-1.0, 0.0, 1.0], axis=0, mode=m)
    close(F.gradient_magnitude(image, padding_mode=mode), np.hypot(gx, gy))


# --- Layouts --------------------------------------------------------------------------------


def _per_channel(channels, kernel, mode):
    return [ndi.correlate(c, kernel, mode=MODES[mode], origin=F.scipy_origin(kernel.shape))
            for c in channels]  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
def test_layouts_filter_each_channel(mode, gen):
    batch = torch.randn(2, 3, 9, 11, generator=gen, dtype=torch.float64)  # (N, C, H, W)
    kernel = torch.randn(4, 3, generator=gen, dtype=torch.float64).numpy()
    nchw = batch.numpy()
    expected = np.stack([np.stack(_per_channel(n, kernel, mode)) for n in nchw])
    close(F.filter2d(nchw, kernel, padding_mode=mode), expected)
    hwc = nchw[0].transpose(1, 2, 0)  # (H, W, C), as an image loads
    got = F.filter2d(hwc, kernel, padding_mode=mode)
    assert got.shape == hwc.shape
    close(got, expected[0].transpose(1, 2, 0))
    close(F.filter2d(nchw[0], kernel, padding_mode=mode, layout="CHW"), expected[0])


def test_tensor_in_tensor_out_with_gradients(gen):
    x = torch.randn(1, 2, 8, 8, generator=gen, requires_grad=True)  # float32
    kernel = F.sobel_kernels()[0]
    y = F.filter2d(x, kernel, padding_mode="reflect")
    weight = torch.as_tensor(kernel, dtype=torch.float32).expand(2, 1, 3, 3)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    expected = torch.nn.functional.conv2d(padded, weight, groups=2)
    torch.testing.assert_close(y, expected)
    g = torch.randn(y.shape, generator=gen)
    (grad,) = torch.autograd.grad(y, x, g)
    (expected_grad,) = torch.autograd.grad(expected, x, g)
    torch.testing.assert_close(grad, expected_grad)


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: F.filter2d(np.zeros((2, 3, 4, 5, 6)), np.ones((3, 3))), ValueError),
        (lambda: F.filter2d(np.zeros((4, 5)), np.ones((3, 3)), layout="HWC"), ValueError),
        (lambda: F.filter2d(np.zeros((4, 5)), np.ones(3)), ValueError),
        (lambda: F.filter2d(np.zeros((4, 5)), np.ones((3, 3)), padding_mode="mirror"), ValueError),
        (lambda: F.gaussian_kernel(5), ValueError),
        (lambda: F.gaussian_kernel(5, 1.0, variance=1.0), ValueError),
        (lambda: F.gaussian_kernel(0, 1.0), ValueError),
        (lambda: F.laplacian_kernel("6"), ValueError),
        (lambda: F.grayscale(np.zeros((4, 5))), ValueError),
        (lambda: F.gradient_magnitude(np.zeros((4, 5)), kind="prewitt"), ValueError),
    ],
    ids=["rank-5", "layout-mismatch", "kernel-1d", "scipy-mode-name", "gaussian-no-width",
         "gaussian-both", "gaussian-size-0", "laplacian-kind", "grayscale-2d", "gradient-kind"],
)  # fmt: skip
def test_bad_arguments(call, error):
    with pytest.raises(error, match=r"\w"):
        call()
