"""Progress lines on stderr (stdout is reserved for the CLI's one JSON line)."""

from __future__ import annotations

import sys
from collections.abc import Callable

Logger = Callable[[str], None]


def stderr_logger(prefix: str = "kosim") -> Logger:
    """A logger that prints ``"<prefix>: <message>"`` to stderr, flushed."""

    def log(message: str) -> None:
        print(f"{prefix}: {message}", file=sys.stderr, flush=True)

    return log


log = stderr_logger()
