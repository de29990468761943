"""How a `scratch` subcommand is declared: a frozen settings dataclass, its options, its run.

Every subcommand module (`reference.check`, `reference.bench`, ...) defines one `COMMAND`;
`reference.cli` lists them. argparse only parses: its namespace becomes the settings object
(lists turned into tuples), and `run` gets that object, never the namespace, so the same run is
callable from Python with `run(Settings(...))`.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    settings: type  # a frozen dataclass: one field per option (argparse dest)
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Any], int]  # settings -> exit status
    description: str = ""

    def register(self, subparsers) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            self.name, help=self.help, description=self.description or self.help
        )
        self.add_arguments(parser)
        parser.set_defaults(command=self)
        return parser


def settings_from(cls: type, namespace: argparse.Namespace):
    """The settings dataclass `cls` filled from a parsed namespace (lists become tuples)."""
    values = {}
    for f in dataclasses.fields(cls):
        value = getattr(namespace, f.name)
        values[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)
