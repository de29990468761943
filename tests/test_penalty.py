"""scratch.functional.l2_penalty against torch autograd of lam * sum(w^2), value and gradients."""

import pytest
import torch

from scratch.functional import l2_penalty
from scratch.kernels import BACKENDS

TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: {}}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_l2_penalty_matches_autograd(backend, dtype, gen):
    shapes = [(7, 5), (3, 2, 3, 3), (4,), ()]
    weights = [torch.randn(s, generator=gen, dtype=dtype, requires_grad=True) for s in shapes]
    twins = [w.detach().clone().requires_grad_() for w in weights]
    g = torch.randn((), generator=gen, dtype=dtype)
    lam = 3e-2
    ours = l2_penalty(weights, lam, backend=backend)
    reference = lam * sum(w.pow(2).sum() for w in twins)
    torch.testing.assert_close(ours, reference, **TOL[dtype])
    (ours * g).backward()
    (reference * g).backward()
    for w, t in zip(weights, twins, strict=True):
        torch.testing.assert_close(w.grad, t.grad, **TOL[dtype])


def test_l2_penalty_gradcheck(gen):
    w = torch.randn(3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: l2_penalty([t], 0.7), (w,))


def test_l2_penalty_needs_tensors():
    with pytest.raises(ValueError, match="at least one tensor"):
        l2_penalty([], 0.1)
