"""Grade a folder of submissions: each one verified in its own process, with a timeout.

`grade(folder, like, entry)` runs `python -m scratch.verify.grade` once per submission (a .py
file or a package folder), so a hanging or crashing submission is one failed row, and writes
`grades.csv` and `grades.md` (submission x case: pass / FAIL / unsupported, the hints).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from scratch.verify.report import _atomic

ROOT = Path(__file__).resolve().parents[2]  # the folder holding the scratch package


def submissions(folder: Path) -> list[Path]:
    """Every .py file and package folder directly in `folder`, sorted by name."""
    found = [p for p in folder.iterdir() if not p.name.startswith((".", "_"))]
    return sorted(p for p in found if p.suffix == ".py" or (p / "__init__.py").is_file())


def grade_one(path: Path, like: str, entry: str, timeout: float, options: dict) -> dict:
    """One submission's row: its report (as JSON) or what went wrong."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        command = [
            sys.executable,
            "-m",
            "scratch.verify.grade",
            f"{path}:{entry}",
            like,
            str(out),
            json.dumps(options),
        ]
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            MPLBACKEND="Agg",
        )
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"submission": path.name, "status": f"timeout after {timeout:g} s"}
        if out.is_file():
            report = json.loads(out.read_text())
            status = report.pop("error", None) or ("pass" if report["passed"] else "FAIL")
            return {"submission": path.name, "status": status, "report": report}
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"submission": path.name, "status": f"crashed (exit {done.returncode}): {tail}"}


def grade(
    folder: str | Path,
    like: str,
    entry: str,
    timeout: float = 120.0,
    options: dict[str, Any] | None = None,
    out: str | Path | None = None,
    jobs: int | None = None,
) -> list[dict]:
    """Grade every submission in `folder` (`jobs` processes at a time); writes grades.csv and
    grades.md into `out` (default: `folder`)."""
    folder = Path(folder)
    jobs = jobs or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(jobs) as pool:  # threads only wait on the worker processes
        rows = list(
            pool.map(
                lambda p: grade_one(p, like, entry, timeout, options or {}), submissions(folder)
            )
        )
    target = Path(out) if out else folder
    cases = list(
        dict.fromkeys(c["name"] for r in rows for c in r.get("report", {}).get("cases", []))
    )
    header = ["submission", "status", "passed", *cases, "hints"]
    table = [header] + [_row(r, cases) for r in rows]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(table)
    _atomic(target / "grades.csv", buffer.getvalue().encode())
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in table[1:]]
    _atomic(target / "grades.md", ("\n".join(md) + "\n").encode())
    return rows


def _row(row: dict, cases: list[str]) -> list[str]:
    report = row.get("report", {})
    verdicts = {c["name"]: c["verdict"] for c in report.get("cases", [])}
    marks = [
        {"fail": "FAIL", "error": "ERROR"}.get(verdicts.get(c, "-"), verdicts.get(c, "-"))
        for c in cases
    ]
    hints = "; ".join(f"{h['check']}: {h['message']}" for h in report.get("hints", []))
    passed = sum(v == "pass" for v in verdicts.values())
    graded = sum(v in ("pass", "fail", "error") for v in verdicts.values())
    return [row["submission"], row["status"], f"{passed}/{graded}", *marks, hints]


def main(argv: list[str]) -> int:
    """The worker: verify one submission, write its report as JSON (exit 2: not adaptable)."""
    from scratch.verify.adapters import AdaptError
    from scratch.verify.api import verify
    from scratch.verify.load import load

    target, like, out, options = argv
    try:
        result = verify(load(target), like, **json.loads(options))
        report = result.to_json()
        if result.declined:  # its status: nothing was checked, which is not a FAIL of 0/0
            report["error"] = result.declined
    except (AdaptError, ValueError) as e:
        report, code = {"error": f"could not load or adapt: {e}", "passed": False}, 2
    else:
        code = 0 if report["passed"] else 1
    _atomic(Path(out), json.dumps(report).encode())
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
