"""Template detection: the normalized cross-correlation map and its maximum."""

import numpy as np
import pytest
import torch

from reference.template import find_template, match_template
from scratch.kernels import BACKENDS


def ncc_loop(image, pattern):
    """Oracle: Pearson correlation of the pattern with each window, one window at a time."""
    h, w = pattern.shape
    out = np.zeros((image.shape[0] - h + 1, image.shape[1] - w + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.corrcoef(image[i : i + h, j : j + w].ravel(), pattern.ravel())[0, 1]
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_response_is_the_windowed_correlation(seed, backend):
    rng = np.random.default_rng(seed)
    image, pattern = 5 + rng.random((12, 15)), rng.random((4, 3))
    got = match_template(image, pattern, backend=backend)
    np.testing.assert_allclose(got, ncc_loop(image, pattern), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("corner", [(0, 0), (17, 31), (40 - 6, 50 - 7)], ids=str)
def test_planted_pattern_is_found(seed, corner):
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(40, 50))
    pattern = rng.normal(size=(6, 7))
    i, j = corner
    image[i : i + 6, j : j + 7] = 2.0 * pattern + 0.5 + 0.3 * rng.normal(size=(6, 7))
    assert find_template(image, pattern) == corner
    response = match_template(image, pattern)
    assert response.shape == (35, 44)
    assert response[corner] > 0.9
    assert np.delete(response.ravel(), np.ravel_multi_index(corner, response.shape)).max() < 0.6


def test_exact_copy_scores_one_and_flat_scores_zero():
    rng = np.random.default_rng(0)
    image = np.zeros((10, 10))  # flat everywhere except a brightened copy of the pattern
    pattern = rng.random((3, 3))
    image[4:7, 2:5] = 10 * pattern + 3
    response = match_template(image, pattern)
    assert response[4, 2] == pytest.approx(1.0, abs=1e-12)
    assert response[0, 6] == 0.0  # a flat window has no correlation
    assert np.all(match_template(image, np.ones((3, 3))) == 0.0)  # nor does a flat pattern


def test_tensor_input_and_bad_shapes():
    image = torch.rand(8, 9, dtype=torch.float64)
    got = match_template(image, image[2:5, 3:7])
    assert isinstance(got, torch.Tensor)
    assert got[2, 3].item() == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="no larger"):
        match_template(np.zeros((3, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="2-d"):
        match_template(np.zeros((3, 3, 3)), np.zeros((2, 2)))
