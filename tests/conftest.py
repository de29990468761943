"""Shared fixtures. Each xdist worker gets one thread: 2 cores, N workers, no oversubscription."""

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

DTYPES = {"float64": torch.float64, "float32": torch.float32}


@pytest.fixture
def seed() -> int:
    return 1234


@pytest.fixture
def gen(seed) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
