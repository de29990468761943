"""The README stays true: its layer table is the generated one, its commands are the real ones."""

from pathlib import Path

from reference.readme import BEGIN, END, README, render

ROOT = Path(__file__).resolve().parent.parent


def test_layer_table_is_current():
    text = README.read_text()
    assert BEGIN in text and END in text
    assert render(text) == text, "run `python -m reference.readme` to regenerate the table"


def test_ci_runs_the_readme_commands():
    readme = README.read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    install = 'python -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]"'
    for command in (f"{install} && scratch check", "pytest -n auto"):
        assert command in readme and command in ci, command
