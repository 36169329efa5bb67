"""The ``kosim`` command line: ``kosim train | encode | evaluate | search`` (see ``kosim --help``).

Each subcommand lives in its own module with ``add_arguments(parser)`` and ``run(args) -> exit code``, and is
registered in :data:`kosim.cli.main.COMMANDS`.
"""

from __future__ import annotations

from kosim.cli.main import COMMANDS, Command, main

__all__ = ["COMMANDS", "Command", "main"]
