"""In-memory datasets of named text columns: :class:`ColumnDataset` and its file readers.

:class:`ColumnDataset` is the training/evaluation container: ordered text columns (the first one is the anchor)
plus an optional float label per row.  It validates its contents eagerly so that a bad file fails at load time with
a ``path:line`` message (see :mod:`kosim.data.parsing`) instead of deep inside a training step.

:meth:`ColumnDataset.tokenize` turns it into a :class:`~kosim.data.tokenized.TokenizedDataset`, where every
distinct text is tokenized exactly once (see :mod:`kosim.data.tokenized`).  ``DataError``, ``TokenizedColumn`` and
``TokenizedDataset`` are re-exported here, where they used to live.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from kosim.data.parsing import (
    ColumnChoice,
    DataError,
    LabelChoice,
    as_label_array,
    iter_csv_records,
    iter_split_lines,
    parse_jsonl,
    parse_table,
)
from kosim.data.tokenized import TokenizedColumn, TokenizedDataset, assign_text_ids, tokenize_columns
from kosim.utils.suggest import did_you_mean

__all__ = ["DataError", "ColumnDataset", "TokenizedColumn", "TokenizedDataset"]

PathLike = str | Path


class ColumnDataset:
    """Rows of named text columns (ordered, first column = anchor) with an optional float label per row.

    Args:
        columns: ``{column_name: texts}``; every column must have the same number of ``str`` items.
        labels: optional finite float per row (e.g. a similarity score or a class id), or a vector of ``k`` floats
            per row (``[rows, k]``: e.g. a teacher's scores of the positive and each negative for MarginMSELoss, or
            a teacher's embedding for MSELoss); batches carry them as a ``[batch]`` / ``[batch, k]`` tensor.
        name: a short name, used by multi-dataset training and in logs.

    Raises:
        ValueError: no columns, unequal column lengths, or non-finite labels.
        TypeError: an item that is not a ``str`` (the message names the column and the row index).
    """

    def __init__(
        self,
        columns: Mapping[str, Sequence[str]],
        labels: Sequence[float] | Sequence[Sequence[float]] | np.ndarray | None = None,
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
            label_arr = as_label_array(labels, f"dataset {name!r}")
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
        """Float64 labels, ``[rows]`` or ``[rows, k]``, or ``None``."""
        return self._labels

    def column(self, name: str) -> list[str]:
        """The texts of column ``name`` (the stored list itself; do not mutate it)."""
        try:
            return self._columns[name]
        except KeyError:
            hint = did_you_mean(name, self._columns)
            raise KeyError(f"no column {name!r}; columns are {self.column_names}{hint}") from None

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

    def rows(self, n: int = 5) -> list[dict[str, str | float | list[float]]]:
        """The first ``n`` rows as dicts (text columns, then ``"label"`` if present: a float, or a list of floats for
        vector labels), e.g. for logging samples."""
        label_key = "label" if "label" not in self._columns else "__label__"
        out: list[dict[str, str | float | list[float]]] = []
        for i in range(min(max(n, 0), len(self))):
            row: dict[str, str | float | list[float]] = {k: v[i] for k, v in self._columns.items()}
            if self._labels is not None:
                row[label_key] = self._labels[i].tolist()
            out.append(row)
        return out

    # -- text ids & tokenization -----------------------------------------------------------------------------------

    @property
    def text_ids(self) -> list[np.ndarray]:
        """One ``int64`` array per column; equal texts get equal ids across all columns (computed once, cached)."""
        if self._text_ids is None:
            self._text_ids, uniques = assign_text_ids(list(self._columns.values()))
            self._num_unique = len(uniques)
        return self._text_ids

    @property
    def num_unique_texts(self) -> int:
        """Number of distinct texts over all columns."""
        self.text_ids  # noqa: B018 - computes and caches
        return self._num_unique

    def tokenize(
        self,
        tokenize_fn: Callable[[list[str]], Sequence[Sequence[int]]],
        batch_size: int = 10000,
        prompts: Mapping[str, str] | None = None,
        prompt_length_fn: Callable[[str], int] | None = None,
    ) -> TokenizedDataset:
        """Tokenize every distinct text exactly once and return a :class:`TokenizedDataset`.

        Args:
            tokenize_fn: maps a list of texts to one list of token ids per text (no padding); typically a fast
                tokenizer call with truncation, returning ``input_ids``.
            batch_size: number of texts handed to ``tokenize_fn`` per call, so peak memory of the Python-level
                token lists stays bounded by one chunk.
            prompts: ``{column: prompt}``, put before every text of the column once, here (columns not named get
                none); ``prompt_length_fn(prompt)`` gives the prompt's token count that the dataset records for
                ``include_prompt=False`` pooling (e.g. ``model.tokenizer.prompt_length``).

        Texts that repeat (inside a column or across columns, common in NLI triplets) are tokenized once and their
        ids copied; the per-row ``text_ids`` of each column come along for duplicate-free batch sampling.
        """
        prompts = dict(prompts or {})
        unknown = [c for c in prompts if c not in self._columns]
        if unknown:
            hint = did_you_mean(unknown[0], self.column_names)
            raise KeyError(
                f"dataset {self.name!r}: prompt for unknown column {unknown[0]!r}; columns are {self.column_names}{hint}"
            )
        per_column = [prompts.get(c, "") for c in self.column_names]
        if any(per_column) and prompt_length_fn is None:
            raise ValueError("prompts need prompt_length_fn (the prompt's token count, for include_prompt=False)")
        lengths = [prompt_length_fn(p) if p else 0 for p in per_column] if any(per_column) else None
        columns = tokenize_columns(
            list(self._columns.values()), tokenize_fn, batch_size, per_column if any(per_column) else None
        )
        return TokenizedDataset(columns, self.column_names, self._labels, self.name, lengths)

    # -- readers ---------------------------------------------------------------------------------------------------

    @classmethod
    def from_tsv(
        cls,
        path: PathLike,
        columns: ColumnChoice = None,
        label: LabelChoice = None,
        delimiter: str = "\t",
        name: str | None = None,
    ) -> ColumnDataset:
        """Read a headed, delimiter-separated file with no quoting (each line is split on ``delimiter``).

        Args:
            path: the file (UTF-8; a BOM and CRLF line ends are accepted).
            columns: text columns to keep, by header name, in dataset order; a dict ``{file_name: dataset_name}``
                also renames them.  ``None`` keeps every column except ``label``.
            label: header name of a numeric label column, or ``None``; a list of names (or ``"scores"`` for
                ``scores_0, scores_1, ..`` columns, as mined TSVs spread them) reads a vector label per row, as does
                a field holding a JSON array such as ``[0.9, 0.1]``.
            delimiter: field separator.
            name: dataset name; defaults to the file's stem.

        Raises:
            DataError: with ``path:line`` for a row with the wrong number of fields, an empty/whitespace-only text,
                a non-numeric or non-finite label, an unknown column name (listing the header and a suggestion), an
                empty file, or a file with a header but no rows.
        """
        p = Path(path)
        texts, labels = parse_table(p, iter_split_lines(p, delimiter), columns, label)
        return cls._trusted(texts, labels, name if name is not None else p.stem)

    @classmethod
    def from_csv(
        cls,
        path: PathLike,
        columns: ColumnChoice = None,
        label: LabelChoice = None,
        delimiter: str = ",",
        name: str | None = None,
    ) -> ColumnDataset:
        """Like :meth:`from_tsv` but parsed with the :mod:`csv` module (quoted fields may hold delimiters and
        newlines); error line numbers point at the line where the record starts (for an invalid UTF-8 byte, at the
        line that holds it)."""
        p = Path(path)
        texts, labels = parse_table(p, iter_csv_records(p, delimiter), columns, label)
        return cls._trusted(texts, labels, name if name is not None else p.stem)

    @classmethod
    def from_jsonl(
        cls,
        path: PathLike,
        columns: ColumnChoice = None,
        label: LabelChoice = None,
        name: str | None = None,
    ) -> ColumnDataset:
        """Read one JSON object per line.

        ``columns`` (list, or ``{key: dataset_name}`` dict) picks string-valued keys; ``None`` takes the keys of the
        first object (minus ``label``) in their order.  Errors are :class:`DataError` with ``path:line``: invalid
        JSON, a non-object line, a missing key (with the keys present and a suggestion), a non-string or empty text,
        a non-numeric or non-finite label, vector labels of different lengths.  A label key may hold a list of
        numbers (a vector label per row), and ``label`` may be a list of keys read together.  Trailing blank lines are ignored, interior ones are errors.
        """
        p = Path(path)
        texts, labels = parse_jsonl(p, columns, label)
        return cls._trusted(texts, labels, name if name is not None else p.stem)
