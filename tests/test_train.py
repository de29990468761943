"""scratch train: lockstep equality, the run folder, resume, divergence, bad arguments, accuracy."""

import json
import math

import pytest
import torch
from PIL import Image

from reference import cli, models
from reference.data import Data, Split
from reference.train import Diverged, TrainSettings, resume, train
from reference.train.core import run_epoch
from reference.train.runfolder import load_checkpoint, read_jsonl
from reference.train.stacks import build_stacks

FAST = dict(progress=False, epochs=1)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two busy cores: torch's thread pool only slows these small models down."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """`scratch train` with no arguments (MLP on digits, float32), as a user runs it."""
    out = tmp_path_factory.mktemp("default")
    assert cli.main(["train", "--quiet", "--out", str(out)]) == 0
    return out


def _tiny(channels, size, n, gen) -> Data:
    def split(k):
        return Split(
            torch.randn(k, channels, size, size, generator=gen),
            torch.randint(10, (k,), generator=gen),
        )

    return Data("tiny", split(n), split(4), split(4), tuple("0123456789"))


# (model, scratch backend, optimizer, l2, image size, epochs over 24 images in batches of 2)
LOCKSTEP = [
    ("mlp", "numpy", "sgd", 1e-3, 8, 17),  # 204 steps
    ("softmax", "torch", "adam", 0.0, 8, 17),
    ("sigmoid-mlp", "numpy", "rmsprop", 1e-2, 8, 17),
    ("lenet", "numpy", "adamw", 1e-3, 28, 4),
    ("lenet", "torch", "sgd", 0.0, 28, 4),
    ("small-cnn", "torch", "adagrad", 1e-3, 16, 4),  # dropout: the same masks in both stacks
    ("small-cnn", "numpy", "sgd", 0.0, 16, 2),
]


@pytest.mark.parametrize(("model", "backend", "optimizer", "l2", "size", "epochs"), LOCKSTEP,
                         ids=[f"{r[0]}-{r[1]}-{r[2]}" for r in LOCKSTEP])  # fmt: skip
def test_lockstep_float64_stays_equal(model, backend, optimizer, l2, size, epochs, gen):
    """Both stacks, same weights, batches and dropout masks: equal to 1e-10 after every step."""
    lr = 0.05 if optimizer in ("sgd", "adagrad") else 1e-3
    s = TrainSettings(model=model, backend=backend, optimizer=optimizer, l2=l2, lr=lr,
                      dtype="float64", batch_size=2, epochs=epochs, progress=False)  # fmt: skip
    data = _tiny(1, size, 24, gen)
    stacks = build_stacks(s, data)
    x = data.train.x.double()
    rows = [row for e in range(epochs) for row in run_epoch(stacks, s, e, x, data.train.y)]
    assert len(rows) == 2 * epochs and math.isfinite(rows[-1]["train_loss"])
    assert max(r["max_loss_diff"] for r in rows) <= 1e-10
    assert max(r["max_weight_diff"] for r in rows) <= 1e-10
    moved = [
        (p - q).abs().max()
        for p, q in zip(stacks[0].model.parameters(), stacks[1].model.parameters())
    ]
    assert max(moved) <= 1e-10  # and the end state itself
    start = build_stacks(s, data)[0].model
    assert any(
        not torch.equal(a, b) for a, b in zip(start.parameters(), stacks[0].model.parameters())
    )


def test_default_run_accuracy_and_float32_gap(default_run):
    """Measured: 0.979 validation accuracy for both stacks; a floor of 0.93 is real but safe."""
    rows = read_jsonl(default_run / "metrics.jsonl")
    last = {r["stack"]: r for r in rows if r["epoch"] == 10}
    assert set(last) == {"torch", "scratch"}
    for row in last.values():
        assert row["val_acc"] >= 0.93
    # float32: the curves overlap; how far apart is recorded (measured ~1e-6)
    assert max(r["max_weight_diff"] for r in rows) < 1e-4
    assert abs(last["torch"]["val_loss"] - last["scratch"]["val_loss"]) < 1e-4


def test_run_folder_files(default_run):
    config = json.loads((default_run / "config.json").read_text())
    assert config["model"] == "mlp" and config["dataset"] == "digits"
    rows = read_jsonl(default_run / "metrics.jsonl")
    assert [(r["epoch"], r["stack"]) for r in rows[:2]] == [(1, "torch"), (1, "scratch")]
    assert len(rows) == 20 and all(r["images_per_s"] > 0 and r["seconds"] > 0 for r in rows)
    for name, (min_w, min_h) in {"curves.png": (800, 300), "confusion.png": (300, 300),
                                 "per_class.png": (400, 250)}.items():  # fmt: skip
        path = default_run / name
        assert path.stat().st_size < 300_000
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width >= min_w and image.height >= min_h
    report = (default_run / "report.md").read_text()
    assert "![curves](curves.png)" in report and "images/s" in report and "| scratch |" in report
    assert not list(default_run.glob(".*.tmp"))  # atomic writes leave no temp files behind


def test_checkpoint_contract(default_run):
    checkpoint = torch.load(default_run / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 10 and "optimizer" in checkpoint
    config = checkpoint["config"]
    assert (config["model"], config["dataset"], config["num_classes"]) == ("mlp", "digits", 10)
    assert (config["in_channels"], config["image_size"]) == (1, [8, 8])
    assert config["class_names"] == list("0123456789")
    assert len(config["mean"]) == len(config["std"]) == 1 and config["std"][0] > 0
    assert json.loads(json.dumps(config)) == config  # plain JSON types
    model, loaded = models.from_checkpoint(default_run / "checkpoint.pt")
    assert loaded == config
    for name, value in model.state_dict().items():
        assert torch.equal(value, checkpoint["model"][name])
    assert list(checkpoint["stacks"]["scratch"]["model"]) == list(checkpoint["model"])


def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path):
    s = TrainSettings(epochs=3, train_fraction=0.2, batch_size=16, progress=False)
    whole = train(s, tmp_path / "whole")
    train(TrainSettings(**{**s.to_json(), "epochs": 1}), tmp_path / "cut")  # "interrupted" after 1
    resumed = resume(tmp_path / "cut", epochs=3)
    a, b = (
        load_checkpoint(tmp_path / "whole/checkpoint.pt"),
        load_checkpoint(tmp_path / "cut/checkpoint.pt"),
    )
    for stack in ("torch", "scratch"):
        for name, value in a["stacks"][stack]["model"].items():
            assert torch.equal(value, b["stacks"][stack]["model"][name]), (stack, name)
    timing = ("seconds", "images_per_s")
    strip = [
        [{k: v for k, v in r.items() if k not in timing} for r in res.history]
        for res in (whole, resumed)
    ]
    assert strip[0] == strip[1]
    assert len(read_jsonl(tmp_path / "cut/metrics.jsonl")) == 6


def test_nan_learning_rate_stops_with_the_step(tmp_path, capsys):
    with pytest.raises(Diverged, match=r"loss is nan at step 2.*Lower the learning rate"):
        train(TrainSettings(lr=float("nan"), **FAST), tmp_path)
    assert cli.main(["train", "--quiet", "--lr", "nan", "--out", str(tmp_path)]) == 1
    assert "at step 2" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--lr", "-0.1"], "--lr must be a positive number, got -0.1"),
    (["--lr", "0"], "--lr must be a positive number, got 0.0"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--train-fraction", "1.5"], "--train-fraction must be in (0, 1]"),
], ids=["lr-negative", "lr-zero", "epochs", "fraction"])  # fmt: skip
def test_bad_values_are_clear_errors(argv, message, tmp_path, capsys):
    assert cli.main(["train", "--quiet", "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--model", "resnet"], ["--dataset", "imagenet"]], ids=["model", "dataset"]
)
def test_unknown_choices_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", *argv])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_missing_data_folder(tmp_path, capsys):
    argv = [
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        str(tmp_path / "none"),
        "--out",
        str(tmp_path),
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "'mnist' was not found" in err and str(tmp_path / "none") in err and "--download" in err


def test_fraction_experiment(tmp_path):
    argv = [
        "train",
        "--quiet",
        "--epochs",
        "1",
        "--train-fraction",
        "0.2,0.5",
        "--out",
        str(tmp_path),
    ]
    assert cli.main(argv) == 0
    table = (tmp_path / "fraction.md").read_text()
    assert "| 0.2 |" in table and "| 0.5 |" in table and "scratch_val_acc" in table
    assert (tmp_path / "fraction.png").stat().st_size > 5_000
    assert (tmp_path / "fraction-0.5" / "checkpoint.pt").is_file()


def test_sweep(tmp_path, capsys):
    grid = ["--grid", "lr=0.1,0.01", "--grid", "l2=0,1e-3"]
    argv = [
        "sweep",
        "--quiet",
        "--epochs",
        "1",
        "--batch-size",
        "128",
        *grid,
        "--out",
        str(tmp_path),
    ]
    assert cli.main(argv) == 0
    rows = (tmp_path / "sweep.csv").read_text().splitlines()
    assert rows[0] == "lr,l2,val_acc,val_loss" and len(rows) == 5
    text = (tmp_path / "sweep.md").read_text()
    assert text.count("**") == 8 and "test accuracy: torch" in text  # one bold row of 4 cells
    assert (tmp_path / "sweep.png").stat().st_size > 5_000
    best = json.loads((tmp_path / "best" / "config.json").read_text())
    assert best["eval_set"] == "test" and best["stacks"] == ["torch", "scratch"]
    assert cli.main(["sweep", "--grid", "lr=0.1", "--out", str(tmp_path)]) == 2
    assert "two different hyperparameters" in capsys.readouterr().err


def test_readme_picture(default_run, tmp_path):
    """docs/train-curves.png is committed, shown by the README, and made by readme_picture."""
    from reference.readme import README
    from reference.train.picture import DOCS_PICTURE, readme_picture

    assert "](docs/train-curves.png)" in README.read_text()
    assert DOCS_PICTURE.is_file() and DOCS_PICTURE.stat().st_size < 300_000
    with Image.open(DOCS_PICTURE) as image:
        assert image.format == "PNG" and image.width >= 800
    made = readme_picture(default_run, tmp_path / "curves.png")
    assert made.read_bytes() == (default_run / "curves.png").read_bytes()


def test_trains_lenet_on_mnist_files(tmp_path):
    """The real torchvision MNIST class reads tiny idx files; LeNet sizes itself to 28x28."""
    from test_train_data import write_mnist

    write_mnist(tmp_path / "data")
    argv = ["train", "--quiet", "--model", "lenet", "--dataset", "mnist", "--epochs", "1",
            "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "run")]  # fmt: skip
    assert cli.main(argv) == 0
    model, config = models.from_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert (config["in_channels"], config["image_size"]) == (1, [28, 28])
    assert config["class_names"][3] == "3 - three"
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
