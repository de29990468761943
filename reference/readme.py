"""The README's table of supported layers, generated from the code so it cannot drift.

`python -m reference.readme` rewrites the table in README.md; a test checks it is current.
"""

from __future__ import annotations

import inspect
import re
from collections import Counter
from pathlib import Path

from scratch.nn import TWINS
from scratch.verify.cases import CASES, ERROR_CASES

BEGIN, END = "<!-- layers:begin -->", "<!-- layers:end -->"
README = Path(__file__).resolve().parent.parent / "README.md"


def layers_markdown() -> str:
    """One row per drop-in module: its torch twin, every constructor option, its case counts."""
    cases = Counter(c.layer for c in CASES)
    errors = Counter(c.layer for c in ERROR_CASES)
    rows = [
        "| scratch.nn | twin of | options (all of torch's, same defaults) "
        "| parity cases | error cases |",
        "|---|---|---|---|---|",
    ]
    for torch_cls, cls in sorted(TWINS.items(), key=lambda kv: kv[1].__name__):
        params = inspect.signature(torch_cls).parameters.values()
        # *args / **kwargs (Sigmoid, Tanh) are catch-alls, not options; device/dtype are torch's
        named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        options = ", ".join(f"`{p.name}`" for p in named if p.name not in ("device", "dtype"))
        rows.append(
            f"| `{cls.__name__}` | `torch.nn.{torch_cls.__name__}` | {options or '-'} "
            f"| {cases[cls.__name__]} | {errors[cls.__name__]} |"
        )
    return "\n".join(rows)


def render(text: str) -> str:
    """`text` with the section between the markers replaced by the current table."""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _: f"{BEGIN}\n{layers_markdown()}\n{END}", text)


if __name__ == "__main__":
    README.write_text(render(README.read_text()))
    print(f"updated {README}")
