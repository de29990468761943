"""scratch.nn.init against torch.nn.init: the very same tensor from the same seed, the right
distribution (bounds worked out by hand, Kolmogorov-Smirnov), torch's signatures and errors."""

import inspect
import math
import warnings

import numpy as np
import pytest
import scipy.stats
import torch

import scratch

OURS, TORCH = scratch.nn.init, torch.nn.init
NAMES = ["uniform_", "normal_", "zeros_", "ones_", "xavier_uniform_", "xavier_normal_",
         "kaiming_uniform_", "kaiming_normal_", "calculate_gain"]  # fmt: skip
RANDOM = {
    "uniform_": [{}, {"a": -2.0, "b": 0.5}],
    "normal_": [{}, {"mean": 1.5, "std": 0.1}],
    "xavier_uniform_": [{}, {"gain": OURS.calculate_gain("tanh")}],
    "xavier_normal_": [{}, {"gain": 0.3}],
    "kaiming_uniform_": [{}, {"a": math.sqrt(5)}, {"mode": "fan_out", "nonlinearity": "relu"},
                         {"a": 0.2, "mode": "FAN_IN", "nonlinearity": "leaky_relu"}],
    "kaiming_normal_": [{}, {"mode": "fan_out", "nonlinearity": "relu"},
                        {"nonlinearity": "selu"}, {"nonlinearity": "tanh"}],
}  # fmt: skip
CALLS = [(name, kw) for name, options in RANDOM.items() for kw in options]
SHAPES = [(7, 3), (16, 3, 5, 5), (5, 4, 3), (2, 3, 2, 2, 2)]


@pytest.mark.parametrize("name", NAMES)
def test_signature_is_torchs(name):
    ours, theirs = inspect.signature(getattr(OURS, name)), inspect.signature(getattr(TORCH, name))
    described = [(p.name, p.kind, p.default) for p in theirs.parameters.values()]
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == described


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name, kwargs", CALLS, ids=[f"{n}-{i}" for n, i in CALLS])
def test_same_seed_same_tensor(name, kwargs, shape, dtype, seed):
    draw = {"generator": torch.Generator().manual_seed(seed), **kwargs}
    ours = getattr(OURS, name)(torch.empty(shape, dtype=dtype), **draw)
    draw = {"generator": torch.Generator().manual_seed(seed), **kwargs}
    theirs = getattr(TORCH, name)(torch.empty(shape, dtype=dtype), **draw)
    assert torch.equal(ours, theirs)  # bit for bit
    # The default generator too: the same global seed gives the same draws.
    torch.manual_seed(seed)
    ours = getattr(OURS, name)(torch.empty(shape, dtype=dtype), **kwargs)
    torch.manual_seed(seed)
    assert torch.equal(ours, getattr(TORCH, name)(torch.empty(shape, dtype=dtype), **kwargs))


def test_in_place_without_autograd_and_constant_fills():
    p = torch.nn.Parameter(torch.empty(4, 6))
    assert OURS.kaiming_uniform_(p) is p
    assert p.grad_fn is None and p.requires_grad
    assert torch.equal(OURS.zeros_(p), torch.zeros(4, 6))
    assert torch.equal(OURS.ones_(p), torch.ones(4, 6))


# Distributions: bounds and spreads worked out by hand for a (256, 64, 3, 3) weight:
# fan_in = 64 * 9 = 576, fan_out = 256 * 9 = 2304.
SHAPE = (256, 64, 3, 3)
UNIFORMS = {
    # kaiming, leaky_relu a=0: gain sqrt(2); bound = sqrt(2) * sqrt(3 / 576) = sqrt(1 / 96)
    "kaiming-default": (lambda t, g: OURS.kaiming_uniform_(t, generator=g), math.sqrt(1 / 96)),
    # a = sqrt(5) (torch.nn.Linear's): gain sqrt(2 / 6); bound = sqrt(1 / 576) = 1 / 24
    "kaiming-sqrt5": (lambda t, g: OURS.kaiming_uniform_(t, a=math.sqrt(5), generator=g), 1 / 24),
    # xavier: bound = sqrt(6 / (576 + 2304)) = sqrt(1 / 480)
    "xavier": (lambda t, g: OURS.xavier_uniform_(t, generator=g), math.sqrt(1 / 480)),
    "uniform": (lambda t, g: OURS.uniform_(t, -0.5, 0.25, generator=g), None),
}
NORMALS = {
    # relu, fan_out: gain sqrt(2); std = sqrt(2) / sqrt(2304) = sqrt(1 / 1152)
    "kaiming-relu-fan_out": (
        lambda t, g: OURS.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", generator=g),
        math.sqrt(1 / 1152),
    ),
    # tanh gain 5/3: std = 5/3 * sqrt(2 / 2880) = 5/3 / sqrt(1440)
    "xavier-tanh": (lambda t, g: OURS.xavier_normal_(t, gain=5 / 3, generator=g),
                    5 / 3 / math.sqrt(1440)),
    "normal": (lambda t, g: OURS.normal_(t, 2.0, 0.5, generator=g), 0.5),
}  # fmt: skip


@pytest.mark.parametrize("name", UNIFORMS)
def test_uniform_distributions(name, gen):
    init, bound = UNIFORMS[name]
    lo, hi = (-bound, bound) if bound is not None else (-0.5, 0.25)
    x = init(torch.empty(SHAPE, dtype=torch.float64), gen).numpy().ravel()
    assert lo <= x.min() and x.max() <= hi
    assert x.min() < lo + 1e-3 * (hi - lo) and x.max() > hi - 1e-3 * (hi - lo)
    assert scipy.stats.kstest(x, scipy.stats.uniform(lo, hi - lo).cdf).pvalue > 1e-3


@pytest.mark.parametrize("name", NORMALS)
def test_normal_distributions(name, gen):
    init, std = NORMALS[name]
    mean = 2.0 if name == "normal" else 0.0
    x = init(torch.empty(SHAPE, dtype=torch.float64), gen).numpy().ravel()
    n = x.size
    assert abs(x.mean() - mean) < 5 * std / math.sqrt(n)
    assert abs(x.std() / std - 1) < 5 / math.sqrt(2 * n)  # the std's standard error
    assert scipy.stats.kstest(x, scipy.stats.norm(mean, std).cdf).pvalue > 1e-3


def test_calculate_gain():
    expected = {"linear": 1, "conv2d": 1, "conv_transpose3d": 1, "sigmoid": 1,
                "tanh": 5 / 3, "relu": math.sqrt(2), "selu": 0.75}  # fmt: skip
    for name, gain in expected.items():
        assert OURS.calculate_gain(name) == gain == TORCH.calculate_gain(name)
    assert OURS.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01**2))
    assert OURS.calculate_gain("leaky_relu", 1) == 1.0
    assert OURS.calculate_gain("leaky_relu", 0.2) == TORCH.calculate_gain("leaky_relu", 0.2)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.calculate_gain("gelu"),
        lambda m: m.calculate_gain("leaky_relu", True),
        lambda m: m.calculate_gain("leaky_relu", "0.1"),
        lambda m: m.kaiming_uniform_(torch.empty(5)),
        lambda m: m.xavier_normal_(torch.empty(())),
        lambda m: m.kaiming_normal_(torch.empty(3, 4), mode="fan_avg"),
    ],
    ids=["gelu", "slope-bool", "slope-str", "1-d", "0-d", "mode"],
)
def test_errors_as_torch(call):
    with pytest.raises(ValueError) as theirs:
        call(TORCH)
    with pytest.raises(ValueError) as ours:
        call(OURS)
    assert str(ours.value).split("(")[0].strip() == str(theirs.value).split("(")[0].strip()


@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_"])
def test_zero_element_tensor_warns_as_torch(name):
    with pytest.warns(UserWarning, match="zero-element"):
        out = getattr(OURS, name)(torch.empty(0, 3))
    assert out.shape == (0, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty = np.zeros((0, 3))  # xavier on an empty tensor is a silent no-op in both
        assert OURS.xavier_uniform_(torch.from_numpy(empty)).shape == (0, 3)
