"""Shared, module-cached fixtures of the probe tests: random VGG16 and the digits LeNet."""

import functools

import pytest

from reference.probe import digits, load


@functools.cache
def random_vgg(name: str = "vgg16") -> load.Loaded:
    """VGG16 with seed-0 random weights (built once per process; never modified by tests)."""
    return load.load_model(name, "random")


@functools.cache
def swapped_vgg(backend: str):
    """`random_vgg()` with scratch twins swapped in (one deep copy per backend and process)."""
    return load.with_backend(random_vgg(), backend)


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory):
    """A LeNet trained on scikit-learn's digits, written as a `scratch train` checkpoint."""
    return digits.write_digits_checkpoint(tmp_path_factory.mktemp("digits") / "checkpoint.pt", 3)


@pytest.fixture(scope="session")
def digits_lenet(digits_checkpoint) -> load.Loaded:
    return load.load_model("lenet", str(digits_checkpoint))
