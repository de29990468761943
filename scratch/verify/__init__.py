"""The proof side: the parity harness, its table of named cases, whole-model parity, the check,
and the verification of a user's own layer.

- `scratch.verify.parity`: `Case`, `run_case`, `gradcheck_case`, `raised` (any candidate class)
- `scratch.verify.cases`: the table of named cases, `CASES` and `ERROR_CASES`
- `scratch.verify.model_parity`: a model against its swapped copy, layer by layer
- `scratch.verify.check`: the table as `scratch check` runs it
- `scratch.verify(obj, like=torch.nn.Conv2d, **options) -> Report`: a user's layer (any
  convention of `scratch.verify.adapters`) against torch.nn, with hints (`scratch.verify.api`)

The package itself is callable: `scratch.verify(...)` is `scratch.verify.api.verify(...)`.
"""

from __future__ import annotations

import sys
import types


class _CallableModule(types.ModuleType):
    """This package, callable as `scratch.verify(obj, like=..., **options)`."""

    def __call__(self, obj, like, **options):
        from scratch.verify.api import verify

        return verify(obj, like, **options)


sys.modules[__name__].__class__ = _CallableModule
