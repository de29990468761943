"""The parity table: every named case of every family (used by the tests and `scratch check`).

Each family module exports `CASES` and `ERROR_CASES`; add a new family to the imports below.
"""

from __future__ import annotations

from scratch.verify.cases import conv, dense, loss, norm, pooling
from scratch.verify.parity import Case, ErrorCase

__all__ = ["CASES", "ERROR_CASES", "FAMILIES", "LAYERS"]

FAMILIES = (dense, loss, conv, pooling, norm)
CASES: list[Case] = [c for m in FAMILIES for c in m.CASES]
ERROR_CASES: list[ErrorCase] = [c for m in FAMILIES for c in m.ERROR_CASES]
LAYERS: list[str] = sorted({c.layer for c in CASES})

_names = [c.name for c in CASES] + [c.name for c in ERROR_CASES]
assert len(_names) == len(set(_names)), "case names must be unique"
