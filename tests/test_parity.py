"""The parity table: every case x backend x dtype against torch.nn, gradcheck, error parity."""

import pytest
import torch

from scratch.kernels import BACKENDS
from scratch.verify.cases import CASES, ERROR_CASES
from scratch.verify.parity import gradcheck_case, raised, run_case

DTYPES = [torch.float64, torch.float32]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_parity(case, dtype, backend):
    outcome = run_case(case, backend, dtype)
    assert not outcome.failures, "\n".join(outcome.failures)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", [c for c in CASES if c.gradcheck], ids=lambda c: c.name)
def test_gradcheck(case, backend):
    assert gradcheck_case(case, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: c.name)
def test_error_parity(case, backend):
    torch_error, scratch_error, message = raised(case, backend)
    assert torch_error is not None, "the case is not an error for torch: fix the case"
    assert scratch_error is torch_error, f"torch raises {torch_error}, scratch {scratch_error}"
    assert message, "the error must say what is wrong"


def _prefix(layer: str) -> str:
    """A layer's row prefix, as tests/kernels ids spell it too: maxpool2d, crossentropy, bce."""
    return layer.lower().removesuffix("loss").replace("withlogits", "logits")


def test_case_names_start_with_their_layer():
    """So that `pytest -k crossentropy` selects a layer's rows here and in tests/kernels/."""
    wrong = [c.name for c in CASES + ERROR_CASES if not c.name.startswith(_prefix(c.layer) + "-")]
    assert not wrong, f"rename to <layer>-<what>: {wrong}"
