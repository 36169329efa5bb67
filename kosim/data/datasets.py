"""In-memory datasets of named text columns, their file readers, and a tokenize-once representation.

:class:`ColumnDataset` is the training/evaluation container: ordered text columns (the first one is the anchor)
plus an optional float label per row.  It validates its contents eagerly so that a bad file fails at load time with
a ``path:line`` message instead of deep inside a training step.

:meth:`ColumnDataset.tokenize` turns it into a :class:`TokenizedDataset`: every distinct text is tokenized exactly
once and stored as flat ``int32`` ids plus ``int64`` offsets per column, together with a per-row integer *text id*
(equal texts share an id across all columns).  The text ids are what the no-duplicates sampler compares, so no
string is ever hashed again during training.
"""

from __future__ import annotations

import csv
import difflib
import itertools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DataError", "ColumnDataset", "TokenizedColumn", "TokenizedDataset"]

PathLike = str | Path


class DataError(ValueError):
    """A data file (or in-memory table) is malformed; the message starts with ``path:line`` where known."""


# --------------------------------------------------------------------------------------------------------------------
# helpers


def _suggest(name: str, choices: Iterable[str]) -> str:
    """A ``" (did you mean 'x'?)"`` hint for a misspelt name, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _assign_text_ids(columns: Sequence[Sequence[str]]) -> tuple[list[np.ndarray], list[str]]:
    """Give every distinct text a dense integer id (in first-seen order, scanning columns left to right).

    Returns one ``int64`` array per column and the list of distinct texts, where ``uniques[i]`` has id ``i``.
    """
    table: dict[str, int] = {}
    ids: list[np.ndarray] = []
    for texts in columns:
        # setdefault evaluates len(table) before inserting, so a new text gets the next free id.
        ids.append(np.fromiter((table.setdefault(t, len(table)) for t in texts), dtype=np.int64, count=len(texts)))
    return ids, list(table)


def _as_label_array(labels: Sequence[float] | np.ndarray, where: str) -> np.ndarray:
    try:
        arr = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: labels must be numbers ({exc})") from None
    if arr.ndim != 1:
        raise ValueError(f"{where}: labels must be one-dimensional, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{where}: label at index {i} is not finite ({arr[i]!r})")
    return arr


def _select_columns(
    header: list[str], columns: Sequence[str] | Mapping[str, str] | None, label: str | None, where: str
) -> tuple[list[int], list[str], int | None]:
    """Resolve requested column names against a header: (source positions, dataset names, label position)."""

    def position(name: str, what: str) -> int:
        hits = [i for i, h in enumerate(header) if h == name]
        if not hits:
            raise DataError(f"{where}: {what} {name!r} not found; available columns: {header}{_suggest(name, header)}")
        if len(hits) > 1:
            raise DataError(f"{where}: {what} {name!r} appears {len(hits)} times in the header")
        return hits[0]

    label_pos = position(label, "label column") if label is not None else None
    if columns is None:
        sources = [h for i, h in enumerate(header) if i != label_pos]
        targets = list(sources)
    elif isinstance(columns, Mapping):
        sources, targets = list(columns.keys()), list(columns.values())
    else:
        if isinstance(columns, str):
            raise TypeError("columns must be a list of names or a {file_name: dataset_name} dict, not a str")
        sources = list(columns)
        targets = list(sources)
    if not sources:
        raise DataError(f"{where}: no text columns selected")
    if len(set(targets)) != len(targets):
        raise DataError(f"{where}: duplicate dataset column names {targets}")
    return [position(s, "column") for s in sources], targets, label_pos


def _parse_label(raw: Any, where: str, column: str) -> float:
    if isinstance(raw, bool) or raw is None:
        raise DataError(f"{where}: label column {column!r} has non-numeric value {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise DataError(f"{where}: label column {column!r} has non-numeric value {raw!r}") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: label column {column!r} is not finite ({raw!r})")
    return value


def _check_text(text: Any, where: str, column: str) -> str:
    if not isinstance(text, str):
        raise DataError(f"{where}: column {column!r} must hold text, got {type(text).__name__} {text!r}")
    if not text.strip():
        raise DataError(f"{where}: empty text in column {column!r}")
    return text


def _iter_split_lines(path: Path, delimiter: str) -> Iterator[tuple[int, list[str] | None]]:
    """Yield ``(line_number, fields)`` for a delimiter-separated file without any quoting rules.

    Lines are split on ``\\n`` only (a stray ``\\r`` inside a text is kept), a UTF-8 BOM and a trailing ``\\r`` are
    removed.  Blank lines are yielded as ``None`` so the caller can decide (trailing ones are tolerated).
    """
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason})") from None
            if lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]
            line = line.rstrip("\n")
            if line.endswith("\r"):
                line = line[:-1]
            yield lineno, (line.split(delimiter) if line else None)


def _iter_csv_records(path: Path, delimiter: str) -> Iterator[tuple[int, list[str] | None]]:
    """Yield ``(first_line_number, fields)`` for a CSV file parsed by the csv module (quoting honoured)."""
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(f"{path}:{start}: malformed CSV ({exc})") from None
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{start}: not valid UTF-8 ({exc.reason})") from None
            yield start, (row if row else None)


def _skip_blank(records: Iterable[tuple[int, Any]], path: Path) -> Iterator[tuple[int, Any]]:
    """Drop trailing blank records; a blank record followed by data is an error naming its line."""
    pending: int | None = None
    for lineno, rec in records:
        if rec is None:
            if pending is None:
                pending = lineno
            continue
        if pending is not None:
            raise DataError(f"{path}:{pending}: empty line")
        yield lineno, rec


def _read_table(
    path: Path,
    records: Iterator[tuple[int, list[str] | None]],
    columns: Sequence[str] | Mapping[str, str] | None,
    label: str | None,
    name: str | None,
) -> ColumnDataset:
    records = _skip_blank(records, path)
    first = next(records, None)
    if first is None:
        raise DataError(f"{path}: empty file (no header line)")
    header_line, header = first
    positions, targets, label_pos = _select_columns(header, columns, label, f"{path}:{header_line}")
    n_fields = len(header)
    texts: list[list[str]] = [[] for _ in targets]
    labels: list[float] = []
    for lineno, fields in records:
        where = f"{path}:{lineno}"
        if len(fields) != n_fields:
            raise DataError(f"{where}: expected {n_fields} fields as in the header {header}, got {len(fields)}")
        for out, pos, target in zip(texts, positions, targets):
            out.append(_check_text(fields[pos], where, target))
        if label_pos is not None:
            labels.append(_parse_label(fields[label_pos], where, header[label_pos]))
    if not texts[0]:
        raise DataError(f"{path}: no data rows after the header")
    return ColumnDataset._trusted(
        dict(zip(targets, texts)),
        np.asarray(labels, dtype=np.float64) if label_pos is not None else None,
        name if name is not None else path.stem,
    )


# --------------------------------------------------------------------------------------------------------------------
# ColumnDataset


class ColumnDataset:
    """Rows of named text columns (ordered, first column = anchor) with an optional float label per row.

    Args:
        columns: ``{column_name: texts}``; every column must have the same number of ``str`` items.
        labels: optional finite float per row (e.g. a similarity score or a class id).
        name: a short name, used by multi-dataset training and in logs.

    Raises:
        ValueError: no columns, unequal column lengths, or non-finite labels.
        TypeError: an item that is not a ``str`` (the message names the column and the row index).
    """

    def __init__(
        self,
        columns: Mapping[str, Sequence[str]],
        labels: Sequence[float] | np.ndarray | None = None,
        name: str = "train",
    ) -> None:
        if not isinstance(columns, Mapping) or len(columns) == 0:
            raise ValueError("ColumnDataset needs at least one text column, e.g. {'anchor': [...]}")
        cols: dict[str, list[str]] = {}
        n_rows: int | None = None
        first_name = ""
        for col_name, texts in columns.items():
            if not isinstance(col_name, str) or not col_name:
                raise ValueError(f"column names must be non-empty strings, got {col_name!r}")
            if isinstance(texts, str):
                raise TypeError(f"column {col_name!r} must be a sequence of strings, not a single str")
            texts = list(texts)
            if n_rows is None:
                n_rows, first_name = len(texts), col_name
            elif len(texts) != n_rows:
                raise ValueError(
                    f"column {col_name!r} has {len(texts)} rows but column {first_name!r} has {n_rows}; "
                    "all columns must have the same length"
                )
            if not all(isinstance(t, str) for t in texts):
                i = next(i for i, t in enumerate(texts) if not isinstance(t, str))
                raise TypeError(f"column {col_name!r}, row {i}: expected str, got {type(texts[i]).__name__}")
            cols[col_name] = texts
        label_arr = None
        if labels is not None:
            label_arr = _as_label_array(labels, f"dataset {name!r}")
            if len(label_arr) != n_rows:
                raise ValueError(f"got {len(label_arr)} labels for {n_rows} rows")
        self._init(cols, label_arr, name)

    def _init(self, columns: dict[str, list[str]], labels: np.ndarray | None, name: str) -> None:
        self._columns = columns
        self._labels = labels
        self.name = name
        self._text_ids: list[np.ndarray] | None = None
        self._num_unique: int = 0

    @classmethod
    def _trusted(cls, columns: dict[str, list[str]], labels: np.ndarray | None, name: str) -> ColumnDataset:
        """Build without re-validating (inputs already checked by a reader or by ``select``)."""
        obj = cls.__new__(cls)
        obj._init(columns, labels, name)
        return obj

    # -- basic access ---------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(next(iter(self._columns.values())))

    @property
    def column_names(self) -> list[str]:
        """Text column names in order; the first is the anchor."""
        return list(self._columns)

    @property
    def num_columns(self) -> int:
        return len(self._columns)

    @property
    def labels(self) -> np.ndarray | None:
        """Float64 labels (one per row) or ``None``."""
        return self._labels

    def column(self, name: str) -> list[str]:
        """The texts of column ``name`` (the stored list itself; do not mutate it)."""
        try:
            return self._columns[name]
        except KeyError:
            raise KeyError(
                f"no column {name!r}; columns are {self.column_names}{_suggest(name, self._columns)}"
            ) from None

    def __repr__(self) -> str:
        lab = "yes" if self._labels is not None else "no"
        return f"ColumnDataset(name={self.name!r}, rows={len(self)}, columns={self.column_names}, labels={lab})"

    def select(self, indices: Sequence[int] | np.ndarray) -> ColumnDataset:
        """A new dataset made of the given rows, in the given order (repeats allowed)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            bad = int(idx[(idx < 0) | (idx >= n)][0])
            raise IndexError(f"row index {bad} out of range for dataset {self.name!r} with {n} rows")
        picks = idx.tolist()
        cols = {k: [v[i] for i in picks] for k, v in self._columns.items()}
        labels = self._labels[idx] if self._labels is not None else None
        return ColumnDataset._trusted(cols, labels, self.name)

    def head(self, n: int) -> ColumnDataset:
        """The first ``n`` rows (fewer if the dataset is shorter)."""
        return self.select(np.arange(min(max(n, 0), len(self))))

    def rows(self, n: int = 5) -> list[dict[str, str | float]]:
        """The first ``n`` rows as dicts (text columns, then ``"label"`` if present), e.g. for logging samples."""
        label_key = "label" if "label" not in self._columns else "__label__"
        out: list[dict[str, str | float]] = []
        for i in range(min(max(n, 0), len(self))):
            row: dict[str, str | float] = {k: v[i] for k, v in self._columns.items()}
            if self._labels is not None:
                row[label_key] = float(self._labels[i])
            out.append(row)
        return out

    # -- text ids & tokenization -----------------------------------------------------------------------------------

    @property
    def text_ids(self) -> list[np.ndarray]:
        """One ``int64`` array per column; equal texts get equal ids across all columns (computed once, cached)."""
        if self._text_ids is None:
            self._text_ids, uniques = _assign_text_ids(list(self._columns.values()))
            self._num_unique = len(uniques)
        return self._text_ids

    @property
    def num_unique_texts(self) -> int:
        """Number of distinct texts over all columns."""
        self.text_ids  # noqa: B018 - computes and caches
        return self._num_unique

    def tokenize(
        self, tokenize_fn: Callable[[list[str]], Sequence[Sequence[int]]], batch_size: int = 10000
    ) -> TokenizedDataset:
        """Tokenize every distinct text exactly once and return a :class:`TokenizedDataset`.

        Args:
            tokenize_fn: maps a list of texts to one list of token ids per text (no padding); typically a fast
                tokenizer call with truncation, returning ``input_ids``.
            batch_size: number of texts handed to ``tokenize_fn`` per call, so peak memory of the Python-level
                token lists stays bounded by one chunk.

        Texts that repeat (inside a column or across columns, common in NLI triplets) are tokenized once and their
        ids copied; the per-row ``text_ids`` of each column come along for duplicate-free batch sampling.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        col_ids, uniques = _assign_text_ids(list(self._columns.values()))
        flat_parts: list[np.ndarray] = []
        length_parts: list[np.ndarray] = []
        for start in range(0, len(uniques), batch_size):
            chunk = uniques[start : start + batch_size]
            encoded = tokenize_fn(chunk)
            if len(encoded) != len(chunk):
                raise ValueError(f"tokenize_fn returned {len(encoded)} results for {len(chunk)} texts")
            lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(chunk))
            flat_parts.append(
                np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int32, count=int(lengths.sum()))
            )
            length_parts.append(lengths)
        uniq_flat = np.concatenate(flat_parts) if flat_parts else np.zeros(0, dtype=np.int32)
        uniq_offsets = np.zeros(len(uniques) + 1, dtype=np.int64)
        if length_parts:
            np.cumsum(np.concatenate(length_parts), out=uniq_offsets[1:])
        columns = [
            TokenizedColumn(*_gather_ragged(uniq_flat, uniq_offsets, tid, batch_size), text_ids=tid) for tid in col_ids
        ]
        return TokenizedDataset(columns, self.column_names, self._labels, self.name)

    # -- readers ---------------------------------------------------------------------------------------------------

    @classmethod
    def from_tsv(
        cls,
        path: PathLike,
        columns: Sequence[str] | Mapping[str, str] | None = None,
        label: str | None = None,
        delimiter: str = "\t",
        name: str | None = None,
    ) -> ColumnDataset:
        """Read a headed, delimiter-separated file with no quoting (each line is split on ``delimiter``).

        Args:
            path: the file (UTF-8; a BOM and CRLF line ends are accepted).
            columns: text columns to keep, by header name, in dataset order; a dict ``{file_name: dataset_name}``
                also renames them.  ``None`` keeps every column except ``label``.
            label: header name of a numeric label column, or ``None``.
            delimiter: field separator.
            name: dataset name; defaults to the file's stem.

        Raises:
            DataError: with ``path:line`` for a row with the wrong number of fields, an empty/whitespace-only text,
                a non-numeric or non-finite label, an unknown column name (listing the header and a suggestion), an
                empty file, or a file with a header but no rows.
        """
        p = Path(path)
        return _read_table(p, _iter_split_lines(p, delimiter), columns, label, name)

    @classmethod
    def from_csv(
        cls,
        path: PathLike,
        columns: Sequence[str] | Mapping[str, str] | None = None,
        label: str | None = None,
        delimiter: str = ",",
        name: str | None = None,
    ) -> ColumnDataset:
        """Like :meth:`from_tsv` but parsed with the :mod:`csv` module (quoted fields may hold delimiters and
        newlines); error line numbers point at the line where the record starts."""
        p = Path(path)
        return _read_table(p, _iter_csv_records(p, delimiter), columns, label, name)

    @classmethod
    def from_jsonl(
        cls,
        path: PathLike,
        columns: Sequence[str] | Mapping[str, str] | None = None,
        label: str | None = None,
        name: str | None = None,
    ) -> ColumnDataset:
        """Read one JSON object per line.

        ``columns`` (list, or ``{key: dataset_name}`` dict) picks string-valued keys; ``None`` takes the keys of the
        first object (minus ``label``) in their order.  Errors are :class:`DataError` with ``path:line``: invalid
        JSON, a non-object line, a missing key (with the keys present and a suggestion), a non-string or empty text,
        a non-numeric or non-finite label.  Trailing blank lines are ignored, interior ones are errors.
        """
        p = Path(path)
        sources: list[str] | None = None
        targets: list[str] = []
        texts: list[list[str]] = []
        labels: list[float] = []
        for lineno, fields in _skip_blank(_iter_split_lines(p, "\n"), p):
            where = f"{p}:{lineno}"
            try:
                obj = json.loads(fields[0])
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            if sources is None:
                if columns is None:
                    sources = [k for k in obj if k != label]
                    targets = list(sources)
                elif isinstance(columns, Mapping):
                    sources, targets = list(columns.keys()), list(columns.values())
                else:
                    if isinstance(columns, str):
                        raise TypeError("columns must be a list of names or a {key: dataset_name} dict, not a str")
                    sources, targets = list(columns), list(columns)
                if not sources:
                    raise DataError(f"{where}: no text columns selected")
                if len(set(targets)) != len(targets):
                    raise DataError(f"{where}: duplicate dataset column names {targets}")
                texts = [[] for _ in sources]
            for out, key, target in zip(texts, sources, targets):
                if key not in obj:
                    raise DataError(f"{where}: missing key {key!r}; keys present: {list(obj)}{_suggest(key, obj)}")
                out.append(_check_text(obj[key], where, target))
            if label is not None:
                if label not in obj:
                    raise DataError(
                        f"{where}: missing label key {label!r}; keys present: {list(obj)}{_suggest(label, obj)}"
                    )
                labels.append(_parse_label(obj[label], where, label))
        if sources is None:
            raise DataError(f"{p}: empty file (no JSON lines)")
        return ColumnDataset._trusted(
            dict(zip(targets, texts)),
            np.asarray(labels, dtype=np.float64) if label is not None else None,
            name if name is not None else p.stem,
        )


# --------------------------------------------------------------------------------------------------------------------
# tokenized representation


def _gather_ragged(
    flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray, chunk_rows: int = 10000
) -> tuple[np.ndarray, np.ndarray]:
    """Copy the ragged entries ``rows`` of (flat, offsets) into a new (flat, offsets) pair, vectorized per chunk."""
    lengths = np.diff(offsets)[rows]
    new_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    out = np.empty(int(new_offsets[-1]), dtype=flat.dtype)
    starts = offsets[:-1][rows]
    chunk_rows = max(int(chunk_rows), 1)
    for lo in range(0, len(rows), chunk_rows):
        hi = min(lo + chunk_rows, len(rows))
        a, b = int(new_offsets[lo]), int(new_offsets[hi])
        if a == b:
            continue
        # For each output token: source start of its row + position within the row.
        shift = np.repeat(starts[lo:hi] - new_offsets[lo:hi], lengths[lo:hi])
        out[a:b] = flat[shift + np.arange(a, b, dtype=np.int64)]
    return out, new_offsets


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
    """A tokenized :class:`ColumnDataset`: one :class:`TokenizedColumn` per text column plus ``float32`` labels."""

    def __init__(
        self,
        columns: Sequence[TokenizedColumn],
        column_names: Sequence[str],
        labels: Sequence[float] | np.ndarray | None = None,
        name: str = "train",
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
            label_arr = _as_label_array(labels, f"dataset {name!r}").astype(np.float32)
            if label_arr.size != n:
                raise ValueError(f"got {label_arr.size} labels for {n} rows")
        self.columns = columns
        self.column_names = column_names
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
            raise KeyError(f"no column {name!r}; columns are {self.column_names}{_suggest(name, self.column_names)}")
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
