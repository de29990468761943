"""The parity table: every named case of every family (used by the tests and `scratch check`).

A family module (dense, loss, conv, pooling, norm) exports `CASES` and `ERROR_CASES`; add it to
`FAMILIES` below to put its rows in the table.
"""

from __future__ import annotations

import importlib

from scratch.verify.parity import Case, ErrorCase

FAMILIES = ("dense", "loss", "conv", "pooling", "norm")


def _family(name: str):
    try:
        return importlib.import_module(f"scratch.verify.cases.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"scratch.verify.cases.{name}":
            raise
        return None


_modules = [m for m in map(_family, FAMILIES) if m is not None]
CASES: list[Case] = [c for m in _modules for c in m.CASES]
ERROR_CASES: list[ErrorCase] = [c for m in _modules for c in m.ERROR_CASES]
LAYERS: list[str] = sorted({c.layer for c in CASES})

_names = [c.name for c in CASES] + [c.name for c in ERROR_CASES]
assert len(_names) == len(set(_names)), "case names must be unique"
