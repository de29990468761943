"""The README gallery: one picture per exercise notebook, by `python -m reference.gallery`."""

from pathlib import Path

import pytest

from reference import gallery

ROOT = Path(__file__).resolve().parent.parent


def test_one_picture_per_exercise_notebook():
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("0[4-8]_*.ipynb")}
    assert set(gallery.FIGURES) == notebooks


@pytest.mark.parametrize("name", gallery.FIGURES)
def test_picture_exists_is_small_and_shown(name):
    path = gallery.path_of(name)
    assert path.exists(), f"run `python -m reference.gallery {name}`"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size < 300_000
    assert f"docs/{path.name}" in (ROOT / "README.md").read_text()


def test_unknown_picture_is_refused(capsys):
    assert gallery.main(["no-such-notebook"]) == 2
    assert "unknown gallery pictures" in capsys.readouterr().err
