"""What parity cannot see: a scratch module really runs scratch's code, not torch's.

Parity compares against torch, so a twin that quietly called torch (an inherited `forward`, a
`super()` call) would pass it. Every case row must therefore come out of a scratch
`autograd.Function` (one `scratch.autograd.kernel_function` made), except where torch itself
returns its input untouched (dropout in eval or with p=0): there is nothing to compute.
"""

import gc
import weakref

import pytest
import torch

from scratch.autograd import kernel_function, made_by
from scratch.kernels import BACKENDS
from scratch.nn import TWINS
from scratch.verify.cases import CASES
from scratch.verify.parity import build


def _run(layer: torch.nn.Module, case, gen_seed: int = 0):
    """(first output, whether it is a fed input itself, unmodified) for one call of `layer`."""
    gen = torch.Generator().manual_seed(gen_seed)
    fed = [i.feed(i.leaf(gen, torch.float64)) for i in case.inputs]
    versions = [t._version for t in fed]
    with torch.random.fork_rng(devices=[]):
        out = layer(*fed)
    first = out[0] if isinstance(out, tuple) else out
    untouched = any(first is t and t._version == v for t, v in zip(fed, versions))
    return first, untouched


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_output_comes_from_a_scratch_function(case, backend):
    reference, twin = build(case, backend, torch.float64)
    _, identity = _run(reference, case)
    out, _ = _run(twin, case)
    if identity:  # torch returns its input: scratch may too (and must not compute anything)
        assert made_by(out) is None
        return
    assert out.grad_fn is not None, "the case builds no graph: give it an input that needs grad"
    assert made_by(out) is not None, f"{case.layer} output made by {type(out.grad_fn).__name__}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_output_dies_with_its_last_reference(case, backend):
    """No reference cycle through a Function's ctx: after forward and backward the output, and
    the graph it holds, die with their last reference, as torch's do, without waiting for gc.
    (The torch backend's sigmoid, tanh and softmaxes kept the y they handed back in their
    cache: a training loop's activations piled up, step after step, until gc ran.)"""
    _, twin = build(case, backend, torch.float64)
    gc.disable()
    try:
        out, _ = _run(twin, case)
        if out.requires_grad:
            out.sum().backward()
        alive = weakref.ref(out)
        del out
        assert alive() is None, f"{case.layer}'s output is kept alive by a reference cycle"
    finally:
        gc.enable()


def test_made_by_tells_scratch_from_torch():
    x = torch.randn(3, requires_grad=True)
    relu = kernel_function("relu")
    from scratch.autograd import Call

    assert made_by(relu.apply(Call.of("torch"), x)) == "relu"
    assert made_by(torch.relu(x)) is None and made_by(x) is None
    assert made_by(torch.randn(3)) is None


@pytest.mark.parametrize("twin", list(TWINS.values()), ids=lambda c: c.__name__)
def test_modules_override_forward_only(twin):
    """Signature, init, extra_repr and state_dict stay torch's: only `forward` is scratch's."""
    own = {name for name in vars(twin) if not (name.startswith("__") and name.endswith("__"))}
    assert own == {"forward"}
