"""Load a user's layer named on the command line: `FILE:NAME` or `FILE:FORWARD,BACKWARD`.

FILE is a Python file or a package folder; it is imported under a private module name with its
own folder on `sys.path` (for its sibling imports). Anything that goes wrong is an `AdaptError`
saying what was tried.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from scratch.verify.adapters import AdaptError

_counter = itertools.count()


def import_file(path: Path) -> ModuleType:
    """Import a .py file or a package folder as a fresh module."""
    package = path.is_dir()
    file = path / "__init__.py" if package else path
    if not file.is_file():
        raise AdaptError(f"{path}: no such Python file or package folder")
    name = f"_scratch_user_{next(_counter)}_{path.stem.replace('-', '_')}"
    locations = [str(path)] if package else None
    spec = importlib.util.spec_from_file_location(name, file, submodule_search_locations=locations)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(path.parent.resolve())
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's file: its error, plainly
        sys.modules.pop(name, None)
        raise AdaptError(f"could not import {path}: {type(e).__name__}: {e}") from None
    finally:
        sys.path.remove(folder)
    return module


def _get(module: ModuleType, path: Path, name: str) -> Any:
    if not hasattr(module, name):
        public = sorted(n for n in vars(module) if not n.startswith("_"))
        raise AdaptError(
            f"{path} defines no {name!r}; it defines: {', '.join(public) or 'nothing'}"
        )
    return getattr(module, name)


def load(target: str) -> Any:
    """The object `target` names: `FILE:NAME` (a class, factory or namespace) or `FILE:F,B`."""
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name:
        raise AdaptError(
            f"{target!r}: expected FILE:NAME (a class, a factory make, or a namespace with "
            "forward and backward) or FILE:FORWARD,BACKWARD"
        )
    module = import_file(Path(path))
    if "," in name:
        forward, backward = (n.strip() for n in name.split(",", 1))
        return (_get(module, Path(path), forward), _get(module, Path(path), backward))
    return _get(module, Path(path), name)
