"""The exit-code policy of every kosim command (``kosim ...`` and the recipe scripts), in one place.

0: done. 2: the input is wrong (a missing file, an invalid config, data file, checkpoint or model directory, a bad
command-line value): one ``PROG: error: ...`` line on stderr, never a traceback. 1: the work itself failed (e.g.
a non-finite loss in training): ``PROG: training failed: ...``. 130: interrupted. Any other exception is a bug in
kosim and keeps its traceback; ``KOSIM_DEBUG=1`` shows the traceback of the others too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

EXIT_OK = 0
EXIT_FAILURE = 1  # the work itself failed
EXIT_USAGE = 2  # bad input
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad command-line input; reported as ``kosim CMD: error: ...`` with exit code 2."""


def exit_code(exc: BaseException) -> int | None:
    """The exit code an exception maps to, or None when it is a bug (to be raised with its traceback)."""
    from kosim.config import ConfigError
    from kosim.data import DataError
    from kosim.nn.loading import CheckpointError
    from kosim.training import TrainingError

    if isinstance(exc, TrainingError):
        return EXIT_FAILURE
    if isinstance(exc, (UsageError, ConfigError, DataError, CheckpointError, OSError)):
        return EXIT_USAGE
    return None


def run_reporting(prog: str, body: Callable[[], int]) -> int:
    """Run ``body`` and return its exit code; an exception is reported on stderr as :func:`exit_code` says."""
    try:
        return body()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        code = exit_code(exc)
        if code is None or os.environ.get("KOSIM_DEBUG"):
            raise
        what = "training failed" if code == EXIT_FAILURE else "error"
        print(f"{prog}: {what}: {exc}", file=sys.stderr)
        return code
