"""The run folder's files, written atomically: a temp file in the same folder, then os.replace."""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
# every file a run writes into its folder (report.py: the report and its pictures)
RUN_FILES = (CONFIG, METRICS, CHECKPOINT, "report.md", "curves.png", "confusion.png")
RUN_FILES += ("per_class.png",)


def prepare(out: Path, fresh: bool) -> Path:
    """`out` made and checked writable before any work (a ValueError saying what is wrong);
    for a fresh run, the files of a run already there are removed first (said on stderr), so
    that an interrupted new run never leaves an old run's checkpoint beside its config."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"--out {out}: it, or a folder above it, is a file") from None
    except PermissionError:
        raise ValueError(f"--out {out}: no permission to create it") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: the folder is not writable")
    old = [out / name for name in RUN_FILES if (out / name).exists()]
    if fresh and old:
        print(f"replacing the run in {out} (--resume {out} continues one)", file=sys.stderr)
        for path in old:
            path.unlink()
    return out


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` for a temp file beside `path`, then move it onto `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a user's file is not
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, value) -> Path:
    return write_text(path, json.dumps(value, indent=2) + "\n")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    return write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line]


def save_checkpoint(path: Path, checkpoint: dict) -> Path:
    return atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def read_torch_file(path: Path, what: str = "checkpoint"):
    """`torch.load(path, weights_only=True)` on the CPU; a file that cannot be read (cut short,
    another kind of file, pickled objects) is a ValueError saying so in one line."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "allowlist" not in str(e):  # not pickled objects (a class torch would allowlist)
            raise ValueError(f"{path} is not a readable {what}: another kind of file") from None
        raise ValueError(  # torch's own message advises weights_only=False: never here
            f"{path} holds more than tensors and plain values (a pickled model?), which "
            "loading with weights_only=True refuses: save the model's state_dict() instead"
        ) from None
    except (OSError, RuntimeError, EOFError) as e:
        cause = str(e).split(". ")[0][:120]
        raise ValueError(
            f"{path} is not a readable {what} ({type(e).__name__}: {cause}): cut short, "
            "or another kind of file"
        ) from None


def load_checkpoint(path: Path) -> dict:
    """A checkpoint written by `scratch train`, loaded with weights_only=True; one that cannot
    be read (cut short, another kind of file) is a ValueError saying so."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: is it a `scratch train` run folder?")
    checkpoint = read_torch_file(path)
    if not isinstance(checkpoint, dict) or not {"config", "epoch", "stacks"} <= set(checkpoint):
        raise ValueError(f"{path} is not a `scratch train` checkpoint (no config, epoch, stacks)")
    return checkpoint
