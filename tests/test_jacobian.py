"""scratch.jacobian (rows from the hand-written backwards) against torch.autograd.functional."""

import pytest
import torch
import torch.nn.functional as TF
from torch.autograd.functional import jacobian as torch_jacobian

import scratch
import scratch.functional as SF
from scratch.kernels import BACKENDS

TOL = {"rtol": 1e-10, "atol": 1e-12}


def f64(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_per_sample_jacobian(gen, backend):
    x = f64(gen, 4, 5)  # (B, C)
    J = scratch.jacobian(lambda t: SF.softmax(t, dim=1, backend=backend), x, batched=True)
    assert J.shape == (4, 5, 5)
    full = torch_jacobian(lambda t: torch.softmax(t, dim=1), x)  # (B, C, B, C)
    b = torch.arange(4)
    torch.testing.assert_close(J, full[b, :, b], **TOL)
    # The structure s_i (δ_ik - s_k), and no sample sees another's input.
    s = torch.softmax(x, dim=1)
    structure = torch.diag_embed(s) - s[:, :, None] * s[:, None, :]
    torch.testing.assert_close(J, structure, **TOL)
    off = full.clone()
    off[b, :, b] = 0
    assert torch.count_nonzero(off) == 0


FUNCTIONS = {
    "softmax": (lambda t, be: SF.softmax(t, dim=1, backend=be), lambda t: torch.softmax(t, 1),
                (3, 4)),
    "log_softmax-unbatched": (lambda t, be: SF.log_softmax(t, dim=0, backend=be),
                              lambda t: torch.log_softmax(t, 0), (5,)),
    "tanh": (lambda t, be: SF.tanh(t, backend=be), torch.tanh, (2, 3)),
    "cross_entropy": (lambda t, be: SF.cross_entropy(t, torch.tensor([2, 0, 1]), backend=be),
                      lambda t: TF.cross_entropy(t, torch.tensor([2, 0, 1])), (3, 4)),
    "max_pool2d": (lambda t, be: SF.max_pool2d(t, 2, backend=be), lambda t: TF.max_pool2d(t, 2),
                   (1, 2, 4, 4)),
}  # fmt: skip


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_full_jacobian_matches_torch(gen, name, backend):
    ours, theirs, shape = FUNCTIONS[name]
    x = f64(gen, *shape)
    J = scratch.jacobian(lambda t: ours(t, backend), x)
    expected = torch_jacobian(theirs, x)
    assert J.shape == expected.shape
    torch.testing.assert_close(J, expected, **TOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_and_linear_jacobians(gen, backend):
    w, bias = f64(gen, 3, 2, 3, 3), f64(gen, 3)
    x = f64(gen, 1, 2, 3, 4)
    J = scratch.jacobian(lambda t: SF.conv2d(t, w, bias, padding=1, backend=backend), x)
    expected = torch_jacobian(lambda t: TF.conv2d(t, w, bias, padding=1), x)
    torch.testing.assert_close(J, expected, **TOL)
    w = f64(gen, 6, 4)
    x = f64(gen, 5, 4)
    J = scratch.jacobian(lambda t: SF.linear(t, w, backend=backend), x, batched=True)
    torch.testing.assert_close(J, w.expand(5, 6, 4), **TOL)  # d(x Wᵀ)/dx = W for each sample


def test_rows_come_from_the_backward():
    class Twice(torch.autograd.Function):
        """y = x, but a backward that claims dy/dx = 2: the Jacobian must show the 2."""

        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            return 2 * grad

    x = torch.zeros(3, dtype=torch.float64)
    expected = 2 * torch.eye(3, dtype=x.dtype)
    torch.testing.assert_close(scratch.jacobian(Twice.apply, x), expected, **TOL)


def test_outputs_independent_of_x_give_zero_rows():
    x = torch.ones(2, 3, dtype=torch.float64)
    J = scratch.jacobian(lambda t: torch.cat([t.sum(1), torch.ones(1, dtype=t.dtype)]), x)
    expected = torch_jacobian(lambda t: torch.cat([t.sum(1), torch.ones(1, dtype=t.dtype)]), x)
    torch.testing.assert_close(J, expected, **TOL)
    assert torch.equal(J[2], torch.zeros(2, 3, dtype=x.dtype))
    assert torch.equal(scratch.jacobian(lambda t: torch.ones(2), x), torch.zeros(2, 2, 3))
    assert scratch.jacobian(lambda t: t[:, :0], x, batched=True).shape == (2, 0, 3)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: scratch.jacobian(torch.sin, torch.arange(3)), TypeError, "floating"),
        (lambda: scratch.jacobian(lambda t: 1.0, torch.ones(2)), TypeError, "return a tensor"),
        (lambda: scratch.jacobian(torch.sum, torch.ones(2, 3), batched=True), ValueError,
         "batch dim"),
        (lambda: scratch.jacobian(lambda t: t.T, torch.ones(2, 3), batched=True), ValueError,
         "batch dim"),
    ],
    ids=["int-input", "not-a-tensor", "scalar-output-batched", "batch-mismatch"],
)  # fmt: skip
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
