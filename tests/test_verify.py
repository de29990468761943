"""`scratch verify` and `scratch.verify(...)`: the product's own layers pass through every
convention, the done-when example (a NumPy conv layer class, correct and broken), the CLI's
reports and exit codes, grading a folder, and what cannot be adapted."""

import json
import shutil
from pathlib import Path

import pytest
import torch

import scratch
import scratch.nn
import scratch.verify
import scratch.verify.parity
from reference.cli import main
from scratch.verify.adapters import AdaptError
from scratch.verify.cases import CASES
from scratch.verify.configs import parse_like
from scratch.verify.load import import_file, load

CORPUS = Path(__file__).parent / "verify_corpus"
PRODUCT = import_file(CORPUS / "product.py")
EXAMPLES = Path(scratch.verify.__file__).parent / "examples"
GOOD, BROKEN = EXAMPLES / "conv_numpy.py", EXAMPLES / "conv_numpy_broken.py"
CONV = "Conv2d(3, 4, 3, stride=2, padding=1)"


def test_package_is_callable_and_still_a_package():
    assert callable(scratch.verify) and scratch.__getattr__("verify") is scratch.verify
    assert scratch.verify.parity.run_case and len(CASES) > 100
    report = scratch.verify(PRODUCT.LinearLayer, like=torch.nn.Linear, examples=3)
    assert report.passed, report.table()
    assert set(report.to_json()) >= {"passed", "hints", "cases"}


def test_like_is_parsed_without_eval():
    assert parse_like("Conv2d") == ("Conv2d", None, None)
    assert parse_like("torch.nn.Conv2d(3, 8, 3, stride=2, padding=(1, 0))") == (
        "Conv2d",
        (3, 8, 3),
        {"stride": 2, "padding": (1, 0)},
    )
    for bad in ("Conv2d(3, 8, __import__('os'))", "Conv2d(", "1 + 2"):
        with pytest.raises(ValueError, match="--like"):
            parse_like(bad)


@pytest.mark.parametrize(
    "obj, like, options",
    [
        (scratch.nn.Linear, "Linear", {}),
        (scratch.nn.MaxPool2d, "MaxPool2d(3, 2, 1)", {}),
        (scratch.nn.CrossEntropyLoss, "CrossEntropyLoss", {}),
        (PRODUCT.linear_pair("numpy"), "Linear", {}),
        (PRODUCT.linear_pair("torch"), "Linear(5, 3, bias=False)", {}),
        (PRODUCT.LinearLayer, "Linear", {}),
        (PRODUCT.LinearFunction, "Linear", {}),
        (PRODUCT.make_conv, CONV, {}),
        (PRODUCT.NHWCConv, CONV, {"layout": "nhwc", "weight_layout": "hwio"}),
    ],
    ids=[
        "module-linear",
        "module-maxpool",
        "module-ce",
        "pair-numpy",
        "pair-torch",
        "layer",
        "function",
        "factory",
        "nhwc-hwio",
    ],
)
def test_our_layers_pass_through_every_convention(obj, like, options):
    report = scratch.verify(obj, like, examples=4, **options)
    assert report.passed, report.table()
    assert not report.hints
    assert not [c for c in report.cases if c.verdict == "error"]


def test_done_when_numpy_conv_class(tmp_path):
    good = scratch.verify(import_file(GOOD).Conv2d, "Conv2d", examples=4)
    assert good.passed, good.table()
    graded = [c for c in good.cases if c.verdict == "pass"]
    assert len(graded) >= 14 and all(c.verdict in ("pass", "unsupported") for c in good.cases)
    assert "conv2d-unbatched" in {c.name for c in good.unsupported}
    assert {"groups", "padding_mode='reflect'"} <= set(good.unsupported_options)
    broken = scratch.verify(import_file(BROKEN).Conv2d, "Conv2d", examples=10)
    assert not broken.passed
    stride = [h for h in broken.hints if h.check == "stride"]
    assert stride and "conv2d-stride2" in stride[0].cases
    smallest = parse_like(broken.smallest_failing)
    assert smallest[2].get("stride", 1) != 1 and smallest[1][:2] == (1, 1), smallest
    assert broken.heatmap(tmp_path / "heat.png").stat().st_size > 1000


def test_cli_reports_and_exit_codes(tmp_path, capsys):
    assert (
        main(
            [
                "verify",
                f"{GOOD}:Conv2d",
                "--like",
                CONV,
                "--json",
                str(tmp_path / "r.json"),
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["passed"] is True and report["hints"] == []
    out = tmp_path / "out"
    assert main(["verify", f"{BROKEN}:Conv2d", "--like", CONV, "--out", str(out), "--quiet"]) == 1
    assert (out / "heatmap.png").is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is False and "stride" in {h["check"] for h in report["hints"]}
    assert "[stride]" in capsys.readouterr().out
    assert main(["verify", f"{GOOD}:Conv2d", "--like", CONV, "--skip", "unbatched"]) == 0
    assert "unbatched" not in capsys.readouterr().out
    assert main(["verify", f"{GOOD}:Nope", "--like", CONV]) == 2
    assert "defines no 'Nope'" in capsys.readouterr().err
    assert main(["verify", f"{GOOD}:Conv2d", "--like", "Conv2d(os.system('x'))"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["verify", f"{GOOD}:Conv2d", "--like", CONV, "--skip", "sideways"])
    assert e.value.code == 2


def test_what_cannot_be_adapted_says_what_was_tried():
    class NoBackward:
        def forward(self, x):
            return x

    with pytest.raises(AdaptError, match="tried as a layer class.*no backward"):
        scratch.verify(NoBackward, "ReLU()")

    class NoWeight:
        def __init__(self, *args, **kwargs):
            pass

        def forward(self, x):
            return x

        def backward(self, g):
            return g

    with pytest.raises(AdaptError, match="keeps no weight"):
        scratch.verify(NoWeight, "Linear(3, 2)")
    with pytest.raises(AdaptError, match="fits no convention"):
        scratch.verify(42, "ReLU()")


def test_a_file_that_does_not_import_is_a_load_error(tmp_path):
    (tmp_path / "erin.py").write_text(NOT_PYTHON)
    with pytest.raises(AdaptError, match="could not import .*erin.py: SyntaxError"):
        load(f"{tmp_path / 'erin.py'}:make")
    with pytest.raises(AdaptError, match="expected FILE:NAME"):
        load("erin.py")


HANG = "import time\n\ndef make(**kw):\n    while True:\n        time.sleep(1)\n"
CRASH = "import os\n\ndef make(**kw):\n    os._exit(3)\n"
NOT_PYTHON = "def make(:\n"


def test_grade_a_folder_of_mixed_submissions(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    glue = "from {0} import Conv2d\n\ndef make(**kw):\n    return Conv2d(**kw)\n"
    shutil.copy(GOOD, folder / "good_impl.py")
    shutil.copy(BROKEN, folder / "broken_impl.py")
    (folder / "alice.py").write_text(glue.format("good_impl"))
    package = folder / "bob"
    package.mkdir()
    (package / "__init__.py").write_text(glue.format("broken_impl"))
    (folder / "dave.py").write_text(CRASH)
    for helper in ("good_impl.py", "broken_impl.py"):  # helpers, not submissions
        (folder / helper).rename(folder / f"_{helper}")
    for name in ("alice.py", "bob/__init__.py"):
        path = folder / name
        path.write_text(
            path.read_text()
            .replace("from good_impl", "from _good_impl")
            .replace("from broken_impl", "from _broken_impl")
        )
    code = main(
        [
            "verify",
            "--grade",
            str(folder),
            "--entry",
            "make",
            "--like",
            "Conv2d(1, 2, 3, stride=2)",
            "--timeout",
            "120",
            "--jobs",
            "4",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 1
    rows = {r.split(",")[0]: r for r in (tmp_path / "grades.csv").read_text().splitlines()[1:]}
    assert set(rows) == {"alice.py", "bob", "dave.py"}
    assert rows["alice.py"].split(",")[1:3] == ["pass", "2/2"]
    assert rows["bob"].split(",")[1] == "FAIL" and "stride" in rows["bob"]
    assert "crashed (exit 3)" in rows["dave.py"]
    assert "| alice.py | pass |" in (tmp_path / "grades.md").read_text()


def test_grade_a_hanging_submission_is_one_timed_out_row(tmp_path):
    (tmp_path / "carol.py").write_text(HANG)
    assert (
        main(
            [
                "verify",
                "--grade",
                str(tmp_path),
                "--entry",
                "make",
                "--like",
                "ReLU()",
                "--timeout",
                "2",
            ]
        )
        == 1
    )
    assert "carol.py,timeout after 2 s" in (tmp_path / "grades.csv").read_text()


def test_readme_shows_the_generated_heatmap():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "## Verify your own layer" in readme and "docs/verify_heatmap.png" in readme
    png = Path(__file__).parent.parent / "docs" / "verify_heatmap.png"
    assert png.is_file() and 1000 < png.stat().st_size < 300_000
    for command in ("conv_numpy.py:Conv2d --like Conv2d", "conv_numpy_broken.py:Conv2d"):
        assert command in readme


GLUE = import_file(CORPUS / "glue.py")


def test_readme_glue_cs231n_pair_sgd_step_and_probability_loss():
    pair = (GLUE.forward, GLUE.backward)
    assert scratch.verify(pair, "Conv2d(2, 3, 3, stride=2, padding=1)").passed
    declined = scratch.verify(pair, "Conv2d(2, 3, 3, stride=(2, 1))")
    assert declined.cases[0].verdict == "unsupported"
    assert "int stride" in declined.cases[0].reason
    dilated = scratch.verify(pair, "Conv2d(2, 3, 3, dilation=2)")
    assert dilated.cases[0].verdict == "unsupported" and not dilated.passed
    assert scratch.verify(GLUE.Stepped, "Linear(4, 3)").passed
    assert not scratch.verify(GLUE.Dense, "Linear(4, 3)").passed  # no gradients to read
    # through probabilities, logits of +-1e4 underflow to log(0): only that edge case fails
    report = scratch.verify(GLUE.FromLogits, "CrossEntropyLoss()")
    assert [c.name for c in report.cases if c.failed] == ["CrossEntropyLoss() extreme"]
    assert {"overflow", "extreme"} <= {h.check for h in report.hints}


def test_a_user_layer_refuses_create_graph():
    """The user's hand-written backward gives no differentiable gradient: create_graph=True
    raises, naming the layer under test, instead of handing back a constant."""
    from scratch.verify.adapters import adapt

    layer = adapt(PRODUCT.linear_pair("numpy"), "Linear")(5, 3)
    x = torch.randn(2, 5, requires_grad=True)
    with pytest.raises(RuntimeError, match="the layer under test: .*create_graph"):
        torch.autograd.grad(layer(x).sum(), x, create_graph=True)
    (grad,) = torch.autograd.grad(layer(x).sum(), x)
    torch.testing.assert_close(grad, layer.weight.detach().sum(dim=0).expand(2, 5))
