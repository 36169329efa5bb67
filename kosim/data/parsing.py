"""Parsing table files (TSV, CSV, JSON lines) into checked text columns and labels, with ``path:line`` errors.

Every reader in :mod:`kosim.data` goes through these helpers, so a bad file fails at load time with a message that
names the file and the line (of the record's start, for CSV records spanning several lines):

* :func:`iter_split_lines` / :func:`iter_csv_records` turn a file into ``(line, fields)`` records,
  :func:`skip_blank` drops trailing blank ones (an interior blank line is an error);
* :func:`resolve_columns` / :func:`select_columns` resolve the caller's column choice (a list, a
  ``{file_name: dataset_name}`` dict, or ``None`` for all) once for every format;
* :func:`parse_table` / :func:`parse_jsonl` read a whole file into ``({name: texts}, labels)``.

A label is one number per row, or a vector of numbers per row (the same length in every row, ``[rows, k]``): the
teacher scores that mining writes with ``output_scores`` (JSONL: a list under one key; TSV/CSV: ``scores_0``,
``scores_1``, .. columns, named together by ``label = "scores"``, or a JSON array in one field), or a teacher's
embedding for MSELoss. ``label`` may also be a list of column names or keys, read together as the vector.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kosim.utils.suggest import did_you_mean

__all__ = [
    "DataError",
    "ColumnChoice",
    "LabelChoice",
    "Table",
    "as_label_array",
    "check_field_count",
    "check_text",
    "iter_csv_records",
    "iter_split_lines",
    "label_names",
    "parse_jsonl",
    "parse_label",
    "parse_table",
    "resolve_columns",
    "select_columns",
    "select_label_columns",
    "skip_blank",
    "split_header",
]

#: Which text columns to keep: names in dataset order, ``{file_name: dataset_name}`` to rename, or ``None`` for all.
ColumnChoice = Sequence[str] | Mapping[str, str] | None
#: The label of a file: one column / key, several read together as a vector, or ``None``.
LabelChoice = str | Sequence[str] | None
#: A parsed file: ``{dataset_column: texts}`` in order, and float64 labels (``[rows]`` or ``[rows, k]``) or ``None``.
Table = tuple[dict[str, list[str]], np.ndarray | None]
Records = Iterator[tuple[int, list[str] | None]]


class DataError(ValueError):
    """A data file (or in-memory table) is malformed; the message starts with ``path:line`` where known."""


# --------------------------------------------------------------------------------------------------------------------
# values


def as_label_array(labels: Sequence[float] | Sequence[Sequence[float]] | np.ndarray, where: str) -> np.ndarray:
    """``labels`` as a finite ``float64`` array, ``[rows]`` (one number per row) or ``[rows, k]`` (a vector per row,
    ``k >= 1``), or a ValueError naming ``where`` and the index (ragged vectors, a non-number, a non-finite value)."""
    if not isinstance(labels, np.ndarray) and len(labels) and isinstance(labels[0], (Sequence, np.ndarray)):
        width = len(labels[0])
        for i, row in enumerate(labels):
            if not isinstance(row, (Sequence, np.ndarray)) or isinstance(row, str) or len(row) != width:
                got = f"{len(row)} values" if isinstance(row, (Sequence, np.ndarray)) else repr(row)
                raise ValueError(f"{where}: label at index {i} has {got}, but label 0 has {width} (ragged labels)")
    try:
        arr = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: labels must be numbers ({exc})") from None
    if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] == 0):
        raise ValueError(f"{where}: labels must be [rows] or [rows, k >= 1], got shape {arr.shape}")
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        i = tuple(int(j) for j in bad[0])
        raise ValueError(f"{where}: label at index {i[0] if len(i) == 1 else i} is not finite ({arr[i]!r})")
    return arr


def _number(raw: Any, where: str, column: str) -> float:
    if isinstance(raw, bool) or raw is None or isinstance(raw, (list, dict)):
        raise DataError(f"{where}: label column {column!r} has non-numeric value {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise DataError(f"{where}: label column {column!r} has non-numeric value {raw!r}") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: label column {column!r} is not finite ({raw!r})")
    return value


def parse_label(raw: Any, where: str, column: str) -> float | list[float]:
    """A finite float from a label field (str or JSON number), or a vector of them from a JSON list (a JSONL value,
    or a TSV/CSV field holding ``[0.9, 0.1]``); a DataError naming ``where`` and ``column`` otherwise."""
    if isinstance(raw, str) and raw.lstrip().startswith("["):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise DataError(f"{where}: label column {column!r} has non-numeric value {raw!r}") from None
    if isinstance(raw, list):
        if not raw:
            raise DataError(f"{where}: label column {column!r} holds an empty list")
        return [_number(v, f"{where}", f"{column}[{j}]") for j, v in enumerate(raw)]
    return _number(raw, where, column)


class LabelRows:
    """Labels collected row by row: all numbers, or all vectors of one length (else a DataError naming the line)."""

    def __init__(self, column: str) -> None:
        self.column = column
        self.values: list[float | list[float]] = []
        self.width: int | None = None  # 0: numbers; k: vectors of k
        self.first = ""

    def add(self, value: float | list[float], where: str) -> None:
        width = len(value) if isinstance(value, list) else 0
        if self.width is None:
            self.width, self.first = width, where
        elif width != self.width:
            raise DataError(
                f"{where}: label {self.column!r} {_shape(width)}, but the first row ({self.first}) "
                f"{_shape(self.width)} (ragged labels)"
            )
        self.values.append(value)

    def array(self) -> np.ndarray:
        """``[rows]`` or ``[rows, k]`` float64."""
        return np.asarray(self.values, dtype=np.float64)


def _shape(width: int) -> str:
    return "is one number" if width == 0 else f"has {width} values"


def check_text(text: Any, where: str, column: str) -> str:
    """``text`` itself if it is a non-blank str, else a DataError naming ``where`` and ``column``."""
    if not isinstance(text, str):
        raise DataError(f"{where}: column {column!r} must hold text, got {type(text).__name__} {text!r}")
    if not text.strip():
        raise DataError(f"{where}: empty text in column {column!r}")
    return text


# --------------------------------------------------------------------------------------------------------------------
# records


def _decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` of every ``\\n``-terminated line (ending kept), each decoded as UTF-8 on its own."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason})") from None


def iter_split_lines(path: Path, delimiter: str) -> Records:
    """Yield ``(line_number, fields)`` for a delimiter-separated file without any quoting rules.

    Lines are split on ``\\n`` only (a stray ``\\r`` inside a text is kept), a UTF-8 BOM and a trailing ``\\r`` are
    removed.  Blank lines are yielded as ``None`` so the caller can decide (trailing ones are tolerated).
    """
    for lineno, line in _decoded_lines(path):
        if lineno == 1 and line.startswith("\ufeff"):
            line = line[1:]
        line = line.rstrip("\n")
        if line.endswith("\r"):
            line = line[:-1]
        yield lineno, (line.split(delimiter) if line else None)


def iter_csv_records(path: Path, delimiter: str) -> Records:
    """Yield ``(first_line_number, fields)`` for a CSV file parsed by the csv module (quoting honoured).

    The text layer decodes the file in blocks ahead of the csv parser, so an invalid UTF-8 byte surfaces while an
    earlier record is being read; that error is re-located by decoding the file line by line.
    """
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
                for _ in _decoded_lines(path):  # raises the DataError naming the line that holds the bad byte
                    pass
                raise DataError(f"{path}:{start}: not valid UTF-8 ({exc.reason})") from None
            yield start, (row if row else None)


def skip_blank(records: Iterable[tuple[int, Any]], path: Path) -> Iterator[tuple[int, Any]]:
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


# --------------------------------------------------------------------------------------------------------------------
# column selection


def resolve_columns(columns: ColumnChoice, available: Sequence[str], where: str) -> tuple[list[str], list[str]]:
    """``(source names, dataset names)`` for a column choice; ``None`` takes every name in ``available``.

    Raises:
        TypeError: ``columns`` is a single str.
        DataError: no column selected, or two columns given the same dataset name.
    """
    if columns is None:
        sources = list(available)
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
    return sources, targets


def label_names(label: LabelChoice, available: Sequence[str]) -> list[str]:
    """The columns a label choice reads: ``[label]``; ``label_0, label_1, ..`` for a name that is not itself a
    column but whose numbered columns are (how mined scores are spread in a TSV); or the list given."""
    if label is None:
        return []
    if isinstance(label, str):
        if label in available or f"{label}_0" not in available:
            return [label]
        names = []
        while f"{label}_{len(names)}" in available:
            names.append(f"{label}_{len(names)}")
        return names
    names = list(label)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"label must be a column name or a non-empty list of names, got {label!r}")
    return names


def select_label_columns(
    header: list[str], columns: ColumnChoice, label: LabelChoice, where: str
) -> tuple[list[int], list[str], list[int]]:
    """Resolve requested column names against a header: (source positions, dataset names, label positions)."""

    def position(name: str, what: str) -> int:
        hits = [i for i, h in enumerate(header) if h == name]
        if not hits:
            raise DataError(
                f"{where}: {what} {name!r} not found; available columns: {header}{did_you_mean(name, header)}"
            )
        if len(hits) > 1:
            raise DataError(f"{where}: {what} {name!r} appears {len(hits)} times in the header")
        return hits[0]

    label_pos = [position(n, "label column") for n in label_names(label, header)]
    sources, targets = resolve_columns(columns, [h for i, h in enumerate(header) if i not in label_pos], where)
    return [position(s, "column") for s in sources], targets, label_pos


def select_columns(
    header: list[str], columns: ColumnChoice, label: str | None, where: str
) -> tuple[list[int], list[str], int | None]:
    """Like :func:`select_label_columns` for one label column exactly: (source positions, names, label position)."""
    if label is not None and label not in header:
        label = [label]  # a missing name is reported as missing, never expanded to label_0, label_1, ..
    positions, targets, label_pos = select_label_columns(header, columns, label, where)
    return positions, targets, (label_pos[0] if label_pos else None)


# --------------------------------------------------------------------------------------------------------------------
# whole files


def split_header(path: Path, records: Records) -> tuple[int, list[str], Iterator[tuple[int, list[str]]]]:
    """``(header line, header, data records)`` of headed records; blank records are skipped as by :func:`skip_blank`.

    Raises:
        DataError: the file has no header line.
    """
    rest = skip_blank(records, path)
    first = next(rest, None)
    if first is None:
        raise DataError(f"{path}: empty file (no header line)")
    return first[0], first[1], rest


def check_field_count(fields: list[str], header: list[str], where: str) -> None:
    """A DataError naming ``where`` unless the record has as many fields as the header."""
    if len(fields) != len(header):
        raise DataError(f"{where}: expected {len(header)} fields as in the header {header}, got {len(fields)}")


def _label_name(label: LabelChoice) -> str:
    return label if isinstance(label, str) else ", ".join(label or ())


def _row_label(fields: Sequence[Any], names: Sequence[str], where: str) -> float | list[float]:
    """One row's label from its label fields: one field (a number or a JSON list), or several numbers."""
    if len(fields) == 1:
        return parse_label(fields[0], where, names[0])
    return [_number(value, where, name) for value, name in zip(fields, names)]


def parse_table(path: Path, records: Records, columns: ColumnChoice, label: LabelChoice) -> Table:
    """Read headed records (the first non-blank one is the header) into the chosen text columns and the label."""
    header_line, header, rows = split_header(path, records)
    positions, targets, label_pos = select_label_columns(header, columns, label, f"{path}:{header_line}")
    label_cols = [header[i] for i in label_pos]
    texts: list[list[str]] = [[] for _ in targets]
    labels = LabelRows(_label_name(label))
    for lineno, fields in rows:
        where = f"{path}:{lineno}"
        check_field_count(fields, header, where)
        for out, pos, target in zip(texts, positions, targets):
            out.append(check_text(fields[pos], where, target))
        if label_pos:
            labels.add(_row_label([fields[i] for i in label_pos], label_cols, where), where)
    if not texts[0]:
        raise DataError(f"{path}: no data rows after the header")
    return dict(zip(targets, texts)), (labels.array() if label_pos else None)


def json_object(line: str, where: str) -> dict[str, Any]:
    """The JSON object on one line, or a DataError naming ``where`` (invalid JSON, or not an object)."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: invalid JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _missing_key(obj: dict[str, Any], key: str, what: str, where: str) -> DataError:
    return DataError(f"{where}: missing {what} {key!r}; keys present: {list(obj)}{did_you_mean(key, obj)}")


def parse_jsonl(path: Path, columns: ColumnChoice, label: LabelChoice) -> Table:
    """Read one JSON object per line; ``columns=None`` takes the first object's keys (minus the label's) in order."""
    sources: list[str] | None = None
    targets: list[str] = []
    texts: list[list[str]] = []
    keys: list[str] = []
    labels = LabelRows(_label_name(label))
    for lineno, fields in skip_blank(iter_split_lines(path, "\n"), path):
        where = f"{path}:{lineno}"
        obj = json_object(fields[0], where)
        if sources is None:
            keys = label_names(label, list(obj))
            sources, targets = resolve_columns(columns, [k for k in obj if k not in keys], where)
            texts = [[] for _ in sources]
        for out, key, target in zip(texts, sources, targets):
            if key not in obj:
                raise _missing_key(obj, key, "key", where)
            out.append(check_text(obj[key], where, target))
        if keys:
            for key in keys:
                if key not in obj:
                    raise _missing_key(obj, key, "label key", where)
            labels.add(_row_label([obj[k] for k in keys], keys, where), where)
    if sources is None:
        raise DataError(f"{path}: empty file (no JSON lines)")
    return dict(zip(targets, texts)), (labels.array() if keys else None)
