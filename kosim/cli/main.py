"""Entry point of the ``kosim`` command (console script and ``python -m kosim``).

Subcommands are registered in :data:`COMMANDS`; adding one is one entry there plus a module with
``add_arguments(parser)`` and ``run(args) -> int``. Errors caused by the input (a missing file, a bad config or
data file, an unloadable model) are reported on stderr with exit code 2, never as a traceback; set
``KOSIM_DEBUG=1`` to see the traceback anyway (the policy: :mod:`kosim.cli.errors`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kosim import __version__
from kosim.cli import encode, evaluate, export, mine, quickstart, search, train
from kosim.cli.errors import run_reporting


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, one-line help, ``--help`` text, argument set-up and body."""

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str | None = None


def _from_module(name: str, module) -> Command:
    return Command(name, module.HELP, module.DESCRIPTION, module.add_arguments, module.run, module.EPILOG)


COMMANDS: list[Command] = [
    _from_module("train", train),
    _from_module("encode", encode),
    _from_module("evaluate", evaluate),
    _from_module("search", search),
    _from_module("mine", mine),
    _from_module("export", export),
    _from_module("quickstart", quickstart),
    # ---- a new subcommand: a module in kosim/cli with HELP, DESCRIPTION, EPILOG, add_arguments(parser) and
    #      run(args) -> int, plus one line here.
]


def build_parser() -> argparse.ArgumentParser:
    """The ``kosim`` parser with one sub-parser per registered command."""
    parser = argparse.ArgumentParser(
        prog="kosim",
        description="kosim: train and use Korean sentence-embedding models (sentence-transformers format).",
        epilog="run 'kosim COMMAND --help' for the options of a command",
    )
    parser.add_argument("--version", action="version", version=f"kosim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        child = sub.add_parser(
            command.name,
            help=command.help,
            description=command.description,
            epilog=command.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(child)
        child.set_defaults(_command=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return its exit code."""
    args = build_parser().parse_args(argv)
    command: Command = args._command
    return run_reporting(f"kosim {command.name}", lambda: command.run(args))


if __name__ == "__main__":
    sys.exit(main())
