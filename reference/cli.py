"""The `scratch` command: one subcommand per module, each declared as a `Command`.

A thin argparse layer: each subcommand's settings are a frozen dataclass, and the work is done
by `scratch.verify` and the `reference` modules.
"""

from __future__ import annotations

import argparse
import os
import sys

from reference import bench, check, verify_cmd
from reference.commands import settings_from
from reference.probe import cli as probe
from reference.train import cli as train_cli
from reference.train import sweep

COMMANDS = (
    check.COMMAND,
    bench.COMMAND,
    verify_cmd.COMMAND,
    probe.COMMAND,
    train_cli.COMMAND,
    sweep.COMMAND,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scratch", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="name", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    namespace = build_parser().parse_args(argv)
    command = namespace.command
    try:
        return command.run(settings_from(command.settings, namespace))
    except BrokenPipeError:  # `scratch train | head`: the reader is gone; quiet, as Unix tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141  # 128 + SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
