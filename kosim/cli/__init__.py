"""The ``kosim`` command line: ``kosim train | encode | evaluate | search | quickstart`` (see ``kosim --help``).

Each subcommand lives in its own module with ``add_arguments(parser)`` and ``run(args) -> exit code``, and is
registered in :data:`kosim.cli.main.COMMANDS` (the entry point: ``kosim.cli.main:main``); :mod:`kosim.cli.errors`
maps exceptions to exit codes. This package file imports nothing, so no subcommand imports it back in a cycle.
"""
