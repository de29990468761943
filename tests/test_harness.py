"""The harness itself must catch broken layers: break a kernel, watch the parity check fail."""

import pytest
import torch

import scratch.kernels.numpy as numpy_kernels
import scratch.kernels.torch as torch_kernels
from scratch.verify.parity import Case, gradcheck_case, randn, run_case

KERNELS = {"numpy": numpy_kernels, "torch": torch_kernels}
LINEAR = Case("linear-broken", "Linear", (randn(4, 5),), (5, 3))


def _skew(backward, which):
    def broken(cache, grad_y, needs):
        grads = list(backward(cache, grad_y, needs))
        grads[which] = grads[which] * 1.001
        return tuple(grads)

    return broken


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("which, name", [(0, "grad input0"), (1, "grad weight"), (2, "grad bias")])
def test_broken_backward_is_caught(monkeypatch, backend, which, name):
    module = KERNELS[backend]
    monkeypatch.setattr(module, "linear_backward", _skew(module.linear_backward, which))
    outcome = run_case(LINEAR, backend, torch.float64)
    assert [f for f in outcome.failures if f.startswith(name)], outcome.failures
    assert not gradcheck_case(LINEAR, backend)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_broken_forward_is_caught(monkeypatch, backend):
    module = KERNELS[backend]
    forward = module.linear_forward

    def broken(x, weight, bias):
        y, cache = forward(x, weight, bias)
        return y + 1e-9, cache

    monkeypatch.setattr(module, "linear_forward", broken)
    outcome = run_case(LINEAR, backend, torch.float64)
    assert [f for f in outcome.failures if f.startswith("output0")], outcome.failures
