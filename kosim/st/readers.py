"""`InputExample`: the legacy training row (texts + label) of sentence-transformers' `fit`."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["InputExample"]


class InputExample:
    """One training row: `texts` (one per column, anchor first) and an optional numeric `label`."""

    def __init__(self, guid: str = "", texts: Sequence[str] | None = None, label: int | float = 0) -> None:
        self.guid = guid
        self.texts = list(texts) if texts is not None else []
        self.label = label

    def __repr__(self) -> str:
        return f"<InputExample> label: {self.label}, texts: {'; '.join(self.texts)}"
