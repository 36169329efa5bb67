"""Typo suggestions for misspelt names (config keys, losses, columns, datasets): one format everywhere."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` (case-insensitive), or ``""`` if none is close."""
    choices = sorted(str(c) for c in choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=cutoff)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=cutoff)]
    return f"; did you mean {close[0]!r}?" if close else ""
