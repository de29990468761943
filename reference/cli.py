"""The `scratch` command: one subcommand per module, each declared as a `Command`.

A thin argparse layer: each subcommand's settings are a frozen dataclass, and the work is done
by `scratch.verify` and the `reference` modules.
"""

from __future__ import annotations

import argparse
import sys

from reference import bench, check, verify_cmd
from reference.commands import settings_from
from reference.probe import cli as probe

COMMANDS = (check.COMMAND, bench.COMMAND, verify_cmd.COMMAND, probe.COMMAND)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scratch", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="name", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    namespace = build_parser().parse_args(argv)
    command = namespace.command
    return command.run(settings_from(command.settings, namespace))


if __name__ == "__main__":
    sys.exit(main())
