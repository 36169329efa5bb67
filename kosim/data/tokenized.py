"""The tokenize-once form of a dataset: flat ``int32`` token ids plus ``int64`` offsets per column, and text ids.

:func:`tokenize_columns` tokenizes every distinct text exactly once and copies its ids to every row that holds it;
the per-row integer *text id* (equal texts share an id across all columns) is what the no-duplicates sampler
compares, so no string is ever hashed again during training.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from kosim.data.parsing import as_label_array
from kosim.utils import ragged
from kosim.utils.suggest import did_you_mean

__all__ = ["TokenizedColumn", "TokenizedDataset", "assign_text_ids", "tokenize_columns"]

TokenizeFn = Callable[[list[str]], Sequence[Sequence[int]]]


def assign_text_ids(columns: Sequence[Sequence[str]]) -> tuple[list[np.ndarray], list[str]]:
    """Give every distinct text a dense integer id (in first-seen order, scanning columns left to right).

    Returns one ``int64`` array per column and the list of distinct texts, where ``uniques[i]`` has id ``i``.
    """
    table: dict[str, int] = {}
    ids: list[np.ndarray] = []
    for texts in columns:
        # setdefault evaluates len(table) before inserting, so a new text gets the next free id.
        ids.append(np.fromiter((table.setdefault(t, len(table)) for t in texts), dtype=np.int64, count=len(texts)))
    return ids, list(table)


def _tokenize_unique(uniques: list[str], tokenize_fn: TokenizeFn, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(flat int32 ids, int64 offsets)`` of ``uniques``, handed to ``tokenize_fn`` ``batch_size`` texts at a time."""
    flat_parts: list[np.ndarray] = []
    length_parts: list[np.ndarray] = []
    for start in range(0, len(uniques), batch_size):
        chunk = uniques[start : start + batch_size]
        encoded = tokenize_fn(chunk)
        if len(encoded) != len(chunk):
            raise ValueError(f"tokenize_fn returned {len(encoded)} results for {len(chunk)} texts")
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(chunk))
        flat_parts.append(np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int32, count=int(lengths.sum())))
        length_parts.append(lengths)
    flat = np.concatenate(flat_parts) if flat_parts else np.zeros(0, dtype=np.int32)
    lengths = np.concatenate(length_parts) if length_parts else np.zeros(0, dtype=np.int64)
    return flat, ragged.offsets_from_lengths(lengths)


def tokenize_columns(
    columns: Sequence[Sequence[str]],
    tokenize_fn: TokenizeFn,
    batch_size: int = 10000,
    prompts: Sequence[str] | None = None,
) -> list[TokenizedColumn]:
    """One :class:`TokenizedColumn` (with text ids) per column of texts; each distinct text is tokenized once.

    Args:
        columns: the texts of each column (all of the same length).
        tokenize_fn: maps a list of texts to one list of token ids per text (no padding).
        batch_size: texts per ``tokenize_fn`` call (bounds the Python-level token lists to one chunk), also the
            rows copied per vectorised step when the ids are spread back onto the rows.
        prompts: one prompt per column ("" for none), put before each of its texts here, once: each distinct
            (prompt, text) is tokenized once. Text ids still name the text alone (as ``ColumnDataset.text_ids``), so
            duplicate-free samplers and per-text tables see the same text under any prompt as one.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    col_ids, uniques = assign_text_ids(columns)
    if prompts is None or not any(prompts):
        uniq_flat, uniq_offsets = _tokenize_unique(uniques, tokenize_fn, batch_size)
        return [
            TokenizedColumn(*ragged.gather(uniq_flat, uniq_offsets, tid, chunk_rows=batch_size), text_ids=tid)
            for tid in col_ids
        ]
    if len(prompts) != len(columns):
        raise ValueError(f"got {len(prompts)} prompts for {len(columns)} columns")
    out: list[TokenizedColumn | None] = [None] * len(columns)
    for prompt in dict.fromkeys(prompts):
        cols = [c for c, p in enumerate(prompts) if p == prompt]
        needed = np.unique(np.concatenate([col_ids[c] for c in cols]))  # text ids read under this prompt, sorted
        flat, offsets = _tokenize_unique([prompt + uniques[i] for i in needed], tokenize_fn, batch_size)
        for c in cols:
            rows = np.searchsorted(needed, col_ids[c])
            out[c] = TokenizedColumn(*ragged.gather(flat, offsets, rows, chunk_rows=batch_size), text_ids=col_ids[c])
    return out  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class TokenizedColumn:
    """Token ids of one column stored flat: row ``i`` is ``ids[offsets[i]:offsets[i + 1]]``.

    Attributes:
        ids: ``int32`` token ids of all rows, concatenated.
        offsets: ``int64`` array of ``n + 1`` row boundaries (``offsets[0] == 0``, ``offsets[-1] == len(ids)``).
        text_ids: optional ``int64`` array of ``n`` text ids; equal texts have equal ids across all columns of the
            dataset, which is what duplicate-free samplers compare.
    """

    ids: np.ndarray
    offsets: np.ndarray
    text_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        ids = np.ascontiguousarray(self.ids, dtype=np.int32).reshape(-1)
        offsets = np.ascontiguousarray(self.offsets, dtype=np.int64).reshape(-1)
        if offsets.size == 0 or offsets[0] != 0 or offsets[-1] != ids.size or np.any(np.diff(offsets) < 0):
            raise ValueError("offsets must start at 0, be non-decreasing and end at len(ids)")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "offsets", offsets)
        if self.text_ids is not None:
            text_ids = np.ascontiguousarray(self.text_ids, dtype=np.int64).reshape(-1)
            if text_ids.size != offsets.size - 1:
                raise ValueError(f"text_ids has {text_ids.size} entries for {offsets.size - 1} rows")
            object.__setattr__(self, "text_ids", text_ids)

    def __len__(self) -> int:
        return self.offsets.size - 1

    @property
    def lengths(self) -> np.ndarray:
        """Token count of every row (``int64``)."""
        return np.diff(self.offsets)

    def __getitem__(self, i: int) -> np.ndarray:
        """The token ids of row ``i`` (a view)."""
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"row {i} out of range for {n} rows")
        return self.ids[self.offsets[i] : self.offsets[i + 1]]


class TokenizedDataset:
    """A tokenized :class:`~kosim.data.ColumnDataset`: one :class:`TokenizedColumn` per text column plus
    ``float32`` labels (``[rows]``, or ``[rows, k]`` for vector labels)."""

    def __init__(
        self,
        columns: Sequence[TokenizedColumn],
        column_names: Sequence[str],
        labels: Sequence[float] | Sequence[Sequence[float]] | np.ndarray | None = None,
        name: str = "train",
        prompt_lengths: Sequence[int] | None = None,
    ) -> None:
        columns = list(columns)
        column_names = list(column_names)
        if not columns:
            raise ValueError("TokenizedDataset needs at least one column")
        if len(columns) != len(column_names):
            raise ValueError(f"{len(columns)} columns but {len(column_names)} column names")
        if len(set(column_names)) != len(column_names):
            raise ValueError(f"duplicate column names {column_names}")
        n = len(columns[0])
        for col_name, col in zip(column_names, columns):
            if len(col) != n:
                raise ValueError(f"column {col_name!r} has {len(col)} rows but column {column_names[0]!r} has {n}")
        label_arr = None
        if labels is not None:
            label_arr = as_label_array(labels, f"dataset {name!r}").astype(np.float32)
            if len(label_arr) != n:
                raise ValueError(f"got {len(label_arr)} labels for {n} rows")
        prompt_lengths = [0] * len(columns) if prompt_lengths is None else [int(p) for p in prompt_lengths]
        if len(prompt_lengths) != len(columns) or min(prompt_lengths) < 0:
            raise ValueError(f"prompt_lengths must be one int >= 0 per column, got {prompt_lengths}")
        self.columns = columns
        self.column_names = column_names
        # tokens of each column's prompt (ids already hold it): what include_prompt=False pooling leaves out
        self.prompt_lengths = prompt_lengths
        self.labels = label_arr
        self.name = name

    def __len__(self) -> int:
        return len(self.columns[0])

    @property
    def num_columns(self) -> int:
        return len(self.columns)

    def column(self, name: str) -> TokenizedColumn:
        """The tokenized column called ``name``."""
        if name not in self.column_names:
            hint = did_you_mean(name, self.column_names)
            raise KeyError(f"no column {name!r}; columns are {self.column_names}{hint}")
        return self.columns[self.column_names.index(name)]

    @property
    def text_ids(self) -> list[np.ndarray]:
        """Per-column text ids (see :class:`TokenizedColumn`); raises if a column was built without them."""
        missing = [n for n, c in zip(self.column_names, self.columns) if c.text_ids is None]
        if missing:
            raise ValueError(f"columns {missing} have no text_ids; build the dataset with ColumnDataset.tokenize")
        return [c.text_ids for c in self.columns]

    def __repr__(self) -> str:
        lab = "yes" if self.labels is not None else "no"
        return f"TokenizedDataset(name={self.name!r}, rows={len(self)}, columns={self.column_names}, labels={lab})"
