"""`scratch train` and `scratch sweep` on what users get wrong: each mistake is one line and
exit 2 (or a recorded result), checked before any training, and a run folder is never left
holding two runs."""

import numpy as np
import pytest
import torch
from test_train_data import _write_idx, write_mnist

from reference import cli, data
from reference.train import core, runfolder

QUIET = ["--quiet", "--epochs", "1"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train(capsys, *argv) -> tuple[int, str]:
    code = cli.main(["train", *QUIET, *map(str, argv)])
    return code, capsys.readouterr().err


def test_resume_refuses_fewer_epochs_and_other_settings(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(capsys, "--epochs", 2, "--out", run)[0] == 0
    code, err = _train(capsys, "--resume", run)  # QUIET's --epochs 1: below the 2 done
    assert code == 2 and "has finished 2 epochs; give --epochs 2 or more" in err
    code, err = _train(capsys, "--resume", run, "--epochs", 3, "--lr", 5, "--model", "lenet")
    assert code == 2 and "drop --model, --lr" in err
    code, err = _train(capsys, "--resume", run, "--epochs", 3, "--out", tmp_path / "elsewhere")
    assert code == 2 and "drop --out" in err
    assert runfolder.load_checkpoint(run / runfolder.CHECKPOINT)["epoch"] == 2  # untouched
    code, err = _train(capsys, "--resume", run, "--epochs", 3, "--data-dir", tmp_path)
    assert code == 0 and runfolder.load_checkpoint(run / runfolder.CHECKPOINT)["epoch"] == 3


def test_a_new_run_replaces_the_run_in_its_folder_before_it_starts(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert _train(capsys, "--out", run)[0] == 0
    assert (run / "report.md").is_file()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(core, "run_epoch", interrupted)
    code, err = _train(capsys, "--model", "small-cnn", "--out", run)
    assert code == 130 and f"continue with `scratch train --resume {run}`" in err
    assert f"replacing the run in {run}" in err
    left = sorted(p.name for p in run.iterdir())
    assert left == [runfolder.CONFIG]  # the new run's config, nothing of the old run's


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hidden", "0"], "--hidden must be >= 1, got 0"),
        (["--threads", "-1"], "--threads must be >= 0"),
        (["--out", ""], "--out must name a folder"),
    ],
    ids=["hidden", "threads", "out-empty"],
)
def test_bad_values_exit_2(argv, message, tmp_path, capsys):
    code, err = (
        _train(capsys, *argv) if "--out" in argv else _train(capsys, *argv, "--out", tmp_path)
    )
    assert code == 2 and message in err


def test_an_out_that_is_a_file_is_said_before_the_data_loads(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("")
    monkeypatch.setattr(core, "load_data", lambda s: pytest.fail("loaded the data first"))
    for out in (afile, afile / "run"):
        code, err = _train(capsys, "--out", out)
        assert code == 2 and "it, or a folder above it, is a file" in err


def test_checkpoints_that_cannot_be_read_are_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(capsys, "--out", run)[0] == 0
    whole = (run / runfolder.CHECKPOINT).read_bytes()
    for content, said in (
        (whole[:1000], "is not a readable checkpoint"),
        (b"garbage", "is not a readable checkpoint"),
    ):
        (run / runfolder.CHECKPOINT).write_bytes(content)
        code, err = _train(capsys, "--resume", run)
        assert code == 2 and said in err and "Traceback" not in err
    torch.save(torch.nn.Linear(2, 2), run / runfolder.CHECKPOINT)  # a pickled module
    code, err = _train(capsys, "--resume", run)
    assert code == 2 and "a pickled model?" in err and "weights_only=False" not in err
    torch.save({"model": {}}, run / runfolder.CHECKPOINT)
    code, err = _train(capsys, "--resume", run)
    assert code == 2 and "not a `scratch train` checkpoint" in err


def test_mnist_files_that_are_there_but_broken_say_so(tmp_path):
    write_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    images = raw / "train-images-idx3-ubyte"
    whole = images.read_bytes()
    images.write_bytes(whole[:100])  # cut short
    with pytest.raises(data.DataError, match="is there but could not be read"):
        data.load("mnist", data_dir=tmp_path)
    images.write_bytes(whole)
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(30) % 10)  # 40 images, 30 labels
    with pytest.raises(data.DataError, match="40 images, 30 labels"):
        data.load("mnist", data_dir=tmp_path)
    _write_idx(raw / "train-labels-idx1-ubyte", np.full(40, 12))  # labels past 9
    with pytest.raises(data.DataError, match=r"labels in 0\.\.9 expected"):
        data.load("mnist", data_dir=tmp_path)


def test_a_sweep_records_a_diverging_cell_and_checks_every_cell_first(tmp_path, capsys):
    out = tmp_path / "sweep"
    grid = ["--grid", "lr=0.1,1e30", "--grid", "l2=0,1e-3"]
    assert cli.main(["sweep", *QUIET, *grid, "--out", str(out)]) == 0
    rows = (out / "sweep.csv").read_text().splitlines()
    assert len(rows) == 5 and sum("nan" in row for row in rows) == 2
    assert (out / "sweep.png").is_file() and "nan: the cell diverged" in (
        out / "sweep.md"
    ).read_text()
    capsys.readouterr()
    bad = tmp_path / "bad"
    code = cli.main(["sweep", *QUIET, "--grid", "lr=0.1,-1", "--grid", "l2=0", "--out", str(bad)])
    assert code == 2 and "--lr must be a positive number" in capsys.readouterr().err
    assert not (bad / "cells").exists()  # nothing trained before the bad cell was found
    code = cli.main(["sweep", *QUIET, "--grid", "lr=0.1,abc", "--grid", "l2=0", "--out", str(bad)])
    assert code == 2 and "every value of lr must be a number" in capsys.readouterr().err
    everything = ["--grid", "lr=1e30,1e31", "--grid", "l2=0"]
    assert cli.main(["sweep", *QUIET, *everything, "--out", str(bad)]) == 1
    assert "every cell of the sweep" in capsys.readouterr().err
