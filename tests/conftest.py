"""Shared fixtures. Each xdist worker gets one thread: 2 cores, N workers, no oversubscription."""

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Hypothesis: "ci" (the default) is derandomized with a fixed budget, so CI runs the same
# examples every time; "deep" (`--hypothesis-profile=deep`) searches long and at random.
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "ci",
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=_SLOW,
)
settings.register_profile("deep", max_examples=2000, deadline=None, suppress_health_check=_SLOW)
settings.load_profile("ci")

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

DTYPES = {"float64": torch.float64, "float32": torch.float32}


@pytest.fixture
def seed() -> int:
    return 1234


@pytest.fixture
def gen(seed) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
