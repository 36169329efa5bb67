"""SIGINT/SIGTERM during training: a flag the loop checks after each optimizer step (it then checkpoints and
exits with 128 + the signal number), instead of dying mid-step."""

from __future__ import annotations

import contextlib
import signal
from typing import Any


class StopSignal:
    """Context manager: while inside, SIGINT/SIGTERM set `received` (the signal number) instead of stopping."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.received = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
