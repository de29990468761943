"""The README's training picture: the curves of the default `scratch train` run.

`python -m reference.train.picture` trains the default run (MLP on digits, both stacks) in a
temporary folder and copies its curves.png to docs/train-curves.png.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from reference.train.core import train
from reference.train.settings import TrainSettings

DOCS_PICTURE = Path(__file__).resolve().parents[2] / "docs" / "train-curves.png"


def readme_picture(run_dir: str | Path | None = None, path: str | Path = DOCS_PICTURE) -> Path:
    """Copy `run_dir`'s curves.png (a fresh default run's, if None) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if run_dir is not None:
        shutil.copyfile(Path(run_dir) / "curves.png", path)
        return path
    with tempfile.TemporaryDirectory() as tmp:
        train(TrainSettings(progress=False), tmp)
        shutil.copyfile(Path(tmp) / "curves.png", path)
    return path


if __name__ == "__main__":
    print(f"wrote {readme_picture()}")
