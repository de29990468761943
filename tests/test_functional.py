"""Functional API details the parity table cannot see: warnings, dtype argument, aliasing."""

import pytest
import torch

import scratch.functional as F


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_implicit_dim_warns_like_torch(name):
    x = torch.randn(2, 3)
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {name}"):
        getattr(torch.nn.functional, name)(x)
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {name}"):
        getattr(F, name)(x)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_softmax_dtype_argument(backend):
    x = torch.randn(3, 4, dtype=torch.float32)
    expected = torch.nn.functional.softmax(x, dim=1, dtype=torch.float64)
    got = F.softmax(x, dim=1, dtype=torch.float64, backend=backend)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_softmax_of_a_scalar(backend):
    x = torch.tensor(3.0, requires_grad=True)
    y = F.softmax(x, dim=0, backend=backend)
    assert y.shape == () and y.item() == 1.0


def test_dropout_eval_is_identity_like_torch():
    x = torch.randn(4)
    assert F.dropout(x, 0.5, training=False) is x
    assert torch.nn.functional.dropout(x, 0.5, training=False) is x


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_dropout_mask_is_torchs(backend):
    x = torch.randn(1000)
    torch.manual_seed(3)
    expected = torch.nn.functional.dropout(x, 0.3)
    torch.manual_seed(3)
    got = F.dropout(x, 0.3, backend=backend)
    assert torch.equal(got == 0, expected == 0)
    torch.testing.assert_close(got, expected)
