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


def test_ci_lints_and_type_checks_after_the_install_before_the_tests():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    steps = ["pip install", "ruff check . && ruff format --check .", "mypy", "pytest -n auto"]
    where = [
        next(i for i, line in enumerate(lines) if line.startswith(s) or s in line) for s in steps
    ]
    assert where == sorted(where), dict(zip(steps, where))


def test_layer_table_skips_catch_all_arguments():
    table = README.read_text().split(BEGIN)[1].split(END)[0]
    assert "`args`" not in table and "`kwargs`" not in table
