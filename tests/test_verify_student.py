"""`scratch verify` on what students write: correct layers with train/eval state or in-place
options pass, and each usual mistake (in the layer or on the command line) gets a report, a
verdict and a clear line, never a traceback or a silent exit status."""

import inspect
import textwrap

import numpy as np
import pytest
import torch

import scratch
import scratch.nn
from reference.cli import main
from scratch.verify.load import load


@pytest.mark.parametrize("module", [torch.nn, scratch.nn], ids=["torch.nn", "scratch.nn"])
@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d", "Dropout", "ReLU", "LeakyReLU"])
def test_modules_with_eval_mode_or_inplace_pass_their_named_cases(module, name):
    """eval() reaches the layer under test (BatchNorm's running stats, Dropout's identity), and
    inplace=True may write into its input (a copy, as in a network)."""
    report = scratch.verify(getattr(module, name), name, examples=3)
    assert report.passed, report.table()


class NumpyBatchNorm2d:
    """A student's NumPy BatchNorm2d: a `training` flag, running stats as attributes."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, **kwargs):
        if not affine or momentum is None or kwargs.get("track_running_stats") is False:
            raise NotImplementedError("affine, tracked, float momentum only")
        self.eps, self.momentum, self.training = eps, momentum, True
        self.weight, self.bias = np.ones(num_features), np.zeros(num_features)
        self.running_mean, self.running_var = np.zeros(num_features), np.ones(num_features)

    def statistics(self, x):
        return x.mean((0, 2, 3)), x.var((0, 2, 3))

    def forward(self, x):
        if self.training and x.size:
            mean, var = self.statistics(x)
            n = x.size / x.shape[1]
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
            unbiased = var * n / (n - 1) if n > 1 else np.full_like(var, np.nan)
            self.running_var = (1 - self.momentum) * self.running_var + self.momentum * unbiased
        mean, var = self.statistics(x) if self.training else (self.running_mean, self.running_var)
        self.inv = 1 / np.sqrt(var + self.eps)[:, None, None]
        self.xhat = (x - mean[:, None, None]) * self.inv
        return self.weight[:, None, None] * self.xhat + self.bias[:, None, None]

    def backward(self, dy):
        self.db, self.dW = dy.sum((0, 2, 3)), (dy * self.xhat).sum((0, 2, 3))
        dxhat = dy * self.weight[:, None, None]
        if not self.training:
            return dxhat * self.inv
        n = dy.size / dy.shape[1]
        mean_dxhat = dxhat.sum((0, 2, 3), keepdims=True) / n
        mean_dxhat_xhat = (dxhat * self.xhat).sum((0, 2, 3), keepdims=True) / n
        return self.inv * (dxhat - mean_dxhat - self.xhat * mean_dxhat_xhat)


class StaleStats(NumpyBatchNorm2d):
    """Never updates its running statistics."""

    def forward(self, x):
        mean, var = self.running_mean.copy(), self.running_var.copy()
        y = super().forward(x)
        self.running_mean, self.running_var = mean, var
        return y


class StatsInEval(NumpyBatchNorm2d):
    """Updates its running statistics in eval mode too."""

    def forward(self, x):
        training, self.training = self.training, True
        super().forward(x)  # the update, and a training output dropped
        self.training = training
        return super().forward(x)


def _failed_checks(report, what: str) -> dict[str, str]:
    """Case name -> message of its failing `what` checks."""
    return {
        c.name: k.message for c in report.cases for k in c.checks if k.what == what and not k.passed
    }


def test_a_numpy_batchnorm_gets_torchs_running_stats_and_mode_and_is_held_to_them():
    report = scratch.verify(NumpyBatchNorm2d, "BatchNorm2d", examples=3)
    assert report.passed, report.table()
    stale = scratch.verify(StaleStats, "BatchNorm2d", examples=0)
    failed = _failed_checks(stale, "running_mean")
    assert "batchnorm2d-train" in failed and "momentum" in failed["batchnorm2d-train"]
    assert not any("eval" in name for name in failed)  # eval leaves them alone: so does it


def test_running_stats_changed_in_eval_mode_are_named():
    report = scratch.verify(StatsInEval, "BatchNorm2d", examples=0)
    failed = _failed_checks(report, "running_mean")
    assert failed["batchnorm2d-eval"].endswith("unchanged in eval mode")


class Sigmoid:
    """The derivative mistyped: y * (1 + y)."""

    def forward(self, x):
        self.y = 1 / (1 + np.exp(-x))
        return self.y

    def backward(self, dy):
        return dy * self.y * (1 + self.y)


class TextbookReLU:
    def forward(self, x):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, dy):
        return dy * (self.x > 0)


def test_a_wrong_derivative_on_nonfinite_inputs_is_a_report_not_a_crash():
    """torch's NaN values on the nonfinite case once made the hint engine's scale NaN."""
    report = scratch.verify(Sigmoid, "Sigmoid", examples=0)
    assert not report.passed and "sigmoid-nonfinite" in [c.name for c in report.cases if c.failed]
    assert "backward" in {h.check for h in report.hints}


def test_the_textbook_relu_is_told_it_differs_only_at_nan():
    report = scratch.verify(TextbookReLU, "ReLU", examples=0)
    assert [c.name for c in report.cases if c.failed] == ["relu-nonfinite"]
    (hint,) = [h for h in report.hints if h.check == "nonfinite"]
    assert "only where the input is NaN or inf" in hint.message and "passes through" in hint.message


class NumpyLinear:
    def __init__(self, in_features, out_features, bias=True):
        self.weight = np.zeros((out_features, in_features))
        self.bias = np.zeros(out_features) if bias else None

    def forward(self, x):
        self.x = x
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias

    def backward(self, dy):
        rows = dy.reshape(-1, dy.shape[-1])
        self.grad_weight = rows.T @ self.x.reshape(-1, self.x.shape[-1])
        self.grad_bias = None if self.bias is None else rows.sum(0)
        return dy @ self.weight


class HalfPrecisionLinear(NumpyLinear):
    def forward(self, x):
        return super().forward(x).astype(np.float32)


def test_an_output_in_lower_precision_than_its_input_is_named():
    report = scratch.verify(HalfPrecisionLinear, "Linear(5, 3)")
    reasons = {c.reason for c in report.cases if c.failed}
    assert any("float32 for a float64 input" in r for r in reasons), report.table()


def _cli(capsys, *args):
    code = main(["verify", *map(str, args), "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


def _layer_file(tmp_path, source: str):
    path = tmp_path / "layer.py"
    path.write_text(textwrap.dedent(source))
    return f"{path}:Linear"


# a user's file: NumpyLinear's source, then a Linear whose constructor and forward run `init`
# and `forward` first (a bug, a print, a hang...)
LINEAR = """
import numpy as np

{base}

class Linear(NumpyLinear):
    def __init__({signature}):
        super().__init__(in_features, out_features, bias)
        {init}

    def forward(self, x):
        {forward}
        return super().forward(x)
"""


def linear(init: str = "pass", forward: str = "pass", signature: str = "") -> str:
    base = inspect.getsource(NumpyLinear)
    signature = signature or "self, in_features, out_features, bias=True"
    return LINEAR.format(base=base, signature=signature, init=init, forward=forward)


@pytest.mark.parametrize(
    ("like", "said"),
    [
        ("Linear(5)", "torch.nn.Linear refuses it (TypeError"),
        ("Linear(5, 3, bais=False)", "unexpected keyword argument 'bais'"),
        ("Linear(5, -3)", "negative dimension"),
        ("Conv2D(3, 4, 3)", "did you mean Conv2d?"),
        ("LSTM", "no such layer"),
    ],
)
def test_like_mistakes_exit_2_with_one_line(tmp_path, capsys, like, said):
    code, out, err = _cli(capsys, _layer_file(tmp_path, linear()), "--like", like)
    assert code == 2 and said in err and "Traceback" not in out + err


def test_one_batchnorm_configuration_runs(capsys):
    """It has no stride: the input sizes of a single configuration once read one."""
    report = scratch.verify(NumpyBatchNorm2d, "BatchNorm2d(3)")
    assert report.passed, report.table()


def test_a_bug_in_the_constructor_is_an_error_a_missing_option_is_declined(tmp_path, capsys):
    bug = linear(init="self.out = len(self.bias)")  # len(None) for bias=False
    report = scratch.verify(load(_layer_file(tmp_path, bug)), "Linear")
    nobias = [c for c in report.cases if "nobias" in c.name]
    assert nobias and all(c.verdict == "error" for c in nobias)
    assert "your constructor raised TypeError" in nobias[0].reason and not report.passed

    class NoBiasOption(NumpyLinear):
        def __init__(self, in_features, out_features):  # bias=False cannot be passed
            super().__init__(in_features, out_features)

    declined = scratch.verify(NoBiasOption, "Linear(5, 3, bias=False)")
    assert {c.verdict for c in declined.cases} == {"unsupported"}
    assert "unexpected keyword argument 'bias'" in declined.cases[0].reason


def test_a_layer_that_declines_every_case_exits_2_saying_why(tmp_path, capsys):
    takes_nothing = linear(signature="self")
    code, out, err = _cli(capsys, _layer_file(tmp_path, takes_nothing), "--like", "Linear")
    assert code == 2 and "declined every case, so nothing was checked" in err
    assert "takes 1 positional argument" in err


def test_sys_exit_in_the_layer_is_an_error_not_the_exit_status(tmp_path, capsys):
    target = _layer_file(tmp_path, linear(forward="import sys; sys.exit(0)"))
    code, out, err = _cli(capsys, target, "--like", "Linear(5, 3)")
    assert code == 1 and "your layer called sys.exit(0)" in out
    (tmp_path / "exits.py").write_text("import sys\nsys.exit('bye')\n")
    code, out, err = _cli(capsys, f"{tmp_path / 'exits.py'}:Linear", "--like", "Linear")
    assert code == 2 and "SystemExit: bye" in err


def test_timeout_stops_a_single_run(tmp_path, capsys):
    target = _layer_file(tmp_path, linear(forward="while True: pass"))
    code, out, err = _cli(capsys, target, "--like", "Linear(5, 3)", "--timeout", 1)
    assert code == 2 and "stopped after --timeout 1 s" in err


def test_the_layers_prints_are_kept_out_of_the_report(tmp_path, capsys):
    target = _layer_file(tmp_path, linear(forward="print('debug', x.shape)"))
    code, out, err = _cli(capsys, target, "--like", "Linear(5, 3)", "--examples", 0)
    assert code == 0 and "debug" not in out and "PASSED" in out
    assert "your layer printed" in err and "'debug (4, 5)'" in err


def test_an_errors_reason_is_shown_whole(tmp_path, capsys):
    message = "x" * 120 + " the end"
    target = _layer_file(tmp_path, linear(forward=f"raise RuntimeError({message!r})"))
    code, out, err = _cli(capsys, target, "--like", "Linear(5, 3)", "--examples", 0)
    assert code == 1 and f"ERROR Linear(5, 3): float64: raised RuntimeError: {message}" in out


def test_lower_precision_is_named_in_float32_runs_too():
    """A float64 result for a float32 input is no error: it is rounded once, as torch would."""

    class Wide(NumpyLinear):
        def forward(self, x):
            return super().forward(x.astype(np.float64))

    assert scratch.verify(Wide, "Linear(5, 3)").passed


def test_a_forward_that_is_not_a_function_of_its_input_is_named(tmp_path):
    noisy = linear(forward="x = x + 1e-12 * np.random.randn()")
    report = scratch.verify(load(_layer_file(tmp_path, noisy)), "Linear(5, 3)")
    messages = {k.message for c in report.cases for k in c.checks if k.what == "mutation"}
    assert any("another output for the same input on a second call" in m for m in messages)
    assert scratch.verify(torch.nn.Dropout, "Dropout(0.5)").passed  # random on purpose


class LinearCutShort(torch.nn.Linear):
    def forward(self, x):
        return super().forward(x)[..., :2]


def test_a_wrong_output_shape_heads_its_row_in_words_for_its_layer():
    report = scratch.verify(LinearCutShort, "Linear(5, 3)")
    row = report.table().splitlines()[2]
    assert row.startswith("Linear(5, 3) ") and row.split()[2:4] == ["FAIL", "output"], row
    sizes = [h.message for h in report.hints if h.check == "size"]
    assert "output: shape (4, 2), torch's (4, 3)" in sizes
    assert not any("floor((H" in size for size in sizes)  # a conv's rule, not Linear's


class DividingReLU(TextbookReLU):
    def forward(self, x):
        return super().forward(x) * (x / x)  # NaN at x = 0, where torch gives 0


def test_hints_that_belong_to_other_layers_stay_with_them():
    """No exp in ReLU, no stride hint when cases without a stride fail too."""
    relu = scratch.verify(DividingReLU, "ReLU", examples=0)
    overflow = [h.message for h in relu.hints if h.check == "overflow"]
    assert overflow and all("exp" not in m for m in overflow)
    flipped = scratch.verify(FlippedConv, "Conv2d", examples=0)
    failing = {c.name for c in flipped.cases if c.failed}
    assert "conv2d-k3" in failing and "conv2d-stride2" in failing
    assert not [h for h in flipped.hints if h.check in ("stride", "dilation")]


class FlippedConv(torch.nn.Conv2d):
    """A correlation with the kernel flipped: wrong with and without a stride."""

    def forward(self, x):
        return self._conv_forward(x, self.weight.flip(-1, -2), self.bias)


def test_input_kinds_are_named_for_what_they_are():
    """BatchNorm1d's (N, C) is batched, not unbatched; zero features are no empty batch; the
    1/N hint reads N from the input the layer sees (a transposed non-contiguous view)."""
    from scratch.verify.cases import CASES
    from scratch.verify.configs import kinds_of

    def kinds(name):
        (case,) = [c for c in CASES if c.name == name]
        gen = torch.Generator().manual_seed(0)
        return kinds_of(case, [i.leaf(gen, torch.float64) for i in case.inputs])

    assert kinds("batchnorm1d-batch1-eval") == ("batched", "batch1")
    assert "zero-size" in kinds("linear-in-features-0") and "empty-batch" in kinds(
        "linear-empty-batch"
    )

    class MeanBias(NumpyLinear):
        def backward(self, dy):
            grad_x = super().backward(dy)
            self.grad_bias = self.grad_bias / dy.shape[0]
            return grad_x

    report = scratch.verify(MeanBias, "Linear", examples=0)
    by_case = {c: h.message for h in report.hints if h.check == "factor" for c in h.cases}
    assert "1/N (N=" in by_case["linear-wide-noncontiguous"]


def test_a_weight_kept_in_out_points_at_the_weight_layout_option(tmp_path, capsys):
    in_out = linear(init="self.weight = self.weight.T.copy()")  # (in, out), as many courses
    code, out, err = _cli(capsys, _layer_file(tmp_path, in_out), "--like", "Linear(5, 3)")
    assert code == 2 and "shape (5, 3), torch's is (3, 5)" in err
    assert "--weight-layout in-out" in err


def test_a_lone_train_method_is_not_taken_for_torchs_train_mode():
    """A layer's train(X, y) (a training loop) is not called; torch's pair is train and eval."""

    class TrainsItself(NumpyLinear):
        def train(self, *args):
            raise AssertionError("the harness called the layer's training loop")

    assert scratch.verify(TrainsItself, "Linear(5, 3)").passed
