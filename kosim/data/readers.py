"""Readers: any table file by format (:func:`read_table`), the KorNLU files (KorSTS, KorNLI), and plain
one-sentence-per-line files."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kosim.data.datasets import ColumnDataset
from kosim.data.parsing import (
    ColumnChoice,
    DataError,
    LabelChoice,
    check_field_count,
    iter_split_lines,
    select_columns,
    skip_blank,
    split_header,
)
from kosim.utils.suggest import did_you_mean

__all__ = [
    "NLI_LABELS",
    "TABLE_FORMATS",
    "TABLE_SUFFIXES",
    "read_kornli_pairs",
    "read_kornli_triplets",
    "read_korsts",
    "read_sentences",
    "read_table",
]

#: The three KorNLI gold labels.
NLI_LABELS = ("entailment", "neutral", "contradiction")

PathLike = str | Path

#: The one format -> reader table: headed TSV (no quoting), CSV (quoting honoured), one JSON object per line.
_TABLE_READERS: dict[str, Callable[..., ColumnDataset]] = {
    "tsv": ColumnDataset.from_tsv,
    "csv": ColumnDataset.from_csv,
    "jsonl": ColumnDataset.from_jsonl,
}
#: Table format names, as used by ``format =`` in run configs.
TABLE_FORMATS: tuple[str, ...] = tuple(_TABLE_READERS)
#: File suffixes :func:`read_table` recognises (lower case, with the dot).
TABLE_SUFFIXES: tuple[str, ...] = tuple(f".{f}" for f in TABLE_FORMATS)


def read_table(
    path: PathLike,
    columns: ColumnChoice = None,
    format: str | None = None,
    *,
    label: LabelChoice = None,
    name: str | None = None,
) -> ColumnDataset:
    """Read a ``.tsv`` / ``.csv`` / ``.jsonl`` table into a :class:`ColumnDataset`.

    Args:
        path: the file.
        columns: text columns to keep (list, ``{file_name: dataset_name}`` dict, or ``None`` for all but ``label``).
        format: ``"tsv"``, ``"csv"`` or ``"jsonl"``; ``None`` takes it from the file suffix (case-insensitive).
        label: name of a numeric label column or key, a list of them (a vector label per row), ``"scores"`` for the
            ``scores_0, scores_1, ..`` columns mining writes, or ``None``.
        name: dataset name; defaults to the file's stem.

    Raises:
        ValueError: an unknown ``format`` (with a suggestion).
        DataError: ``format=None`` and a suffix that names no table format (the message names the path), or any
            error of the format's reader (``path:line``).
    """
    p = Path(path)
    if format is None:
        suffix = p.suffix.lower()
        if suffix not in TABLE_SUFFIXES:
            raise DataError(
                f"{p}: cannot tell the table format from the suffix {p.suffix!r}; expected one of "
                f"{', '.join(TABLE_SUFFIXES)} (or name the format: {', '.join(TABLE_FORMATS)})"
            )
        format = suffix[1:]
    reader = _TABLE_READERS.get(format)
    if reader is None:
        raise ValueError(
            f"unknown table format {format!r}; expected one of {list(TABLE_FORMATS)}{did_you_mean(str(format), TABLE_FORMATS)}"
        )
    return reader(p, columns=columns, label=label, name=name)


def read_korsts(path: PathLike, name: str | None = None) -> ColumnDataset:
    """Read a KorSTS file into columns ``sentence1``, ``sentence2`` with label ``score / 5`` in ``[0, 1]``.

    The file is tab-separated with header ``genre filename year id score sentence1 sentence2``; texts may contain
    ``"`` so no quoting is applied.  A bad row (wrong field count, empty sentence, non-numeric, non-finite or
    out-of-range score) raises :class:`DataError` naming ``path:line``.
    """
    p = Path(path)
    ds = ColumnDataset.from_tsv(p, columns=["sentence1", "sentence2"], label="score", name=name)
    scores = ds.labels
    bad = np.flatnonzero((scores < 0.0) | (scores > 5.0))
    if bad.size:
        # Rows map 1:1 to lines after the header (interior blank lines are rejected by the reader).
        i = int(bad[0])
        raise DataError(f"{p}:{i + 2}: score {float(scores[i])} is outside [0, 5]")
    return ColumnDataset(
        {"sentence1": ds.column("sentence1"), "sentence2": ds.column("sentence2")}, scores / 5.0, ds.name
    )


def _read_nli_rows(path: Path) -> list[tuple[int, str, str, str]]:
    """``(line, premise, hypothesis, label)`` for every row of a KorNLI tsv, texts stripped, labels checked."""
    header_line, header, records = split_header(path, iter_split_lines(path, "\t"))
    (p_pos, h_pos), _, label_pos = select_columns(
        header, ["sentence1", "sentence2"], "gold_label", f"{path}:{header_line}"
    )
    rows = []
    for lineno, fields in records:
        where = f"{path}:{lineno}"
        check_field_count(fields, header, where)
        premise, hypothesis, label = fields[p_pos].strip(), fields[h_pos].strip(), fields[label_pos].strip()
        if not premise or not hypothesis:
            raise DataError(f"{where}: empty text in column {'sentence1' if not premise else 'sentence2'!r}")
        if label not in NLI_LABELS:
            raise DataError(f"{where}: unknown gold_label {label!r}; expected one of {list(NLI_LABELS)}")
        rows.append((lineno, premise, hypothesis, label))
    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    return rows


def read_kornli_pairs(path: PathLike, name: str | None = None) -> ColumnDataset:
    """Every row of a KorNLI tsv as ``(premise, hypothesis)`` with its class label: the index of its gold label in
    :data:`NLI_LABELS` (entailment 0, neutral 1, contradiction 2), for the original SBERT recipe (SoftmaxLoss).
    Texts are stripped; an unknown label or empty text raises :class:`DataError` naming the file and line."""
    p = Path(path)
    rows = _read_nli_rows(p)
    labels = np.array([NLI_LABELS.index(label) for *_, label in rows], dtype=np.float64)
    columns = {"premise": [r[1] for r in rows], "hypothesis": [r[2] for r in rows]}
    return ColumnDataset(columns, labels, name if name is not None else p.stem)


def read_kornli_triplets(path: PathLike, seed: int = 42, name: str | None = None) -> ColumnDataset:
    """Build (anchor, positive, negative) triplets from a KorNLI tsv by the SBERT NLI recipe.

    Every row ``(premise, hypothesis, label)`` is recorded in both directions, so each sentence ``s`` gets the
    set of its entailment partners and its contradiction partners.  Walking the sentences in first-seen order
    (premise before hypothesis, row by row), each ``s`` with at least one entailment and one contradiction partner
    yields two triplets::

        (s, random entailment, random contradiction)
        (random entailment, s, random contradiction)

    where the four random picks come, in that order, from one ``random.Random(seed)``.  Partner collections keep
    insertion order (dicts, never ``set`` iteration order), so the result depends only on the file and the seed.
    Texts are stripped of surrounding whitespace; an unknown label or empty text raises :class:`DataError`.
    """
    p = Path(path)
    partners: dict[str, dict[str, dict[str, None]]] = {}

    def add(sent: str, other: str, label: str) -> None:
        entry = partners.get(sent)
        if entry is None:
            entry = partners[sent] = {lab: {} for lab in NLI_LABELS}
        entry[label][other] = None

    for _, premise, hypothesis, label in _read_nli_rows(p):
        add(premise, hypothesis, label)
        add(hypothesis, premise, label)

    rng = random.Random(seed)
    anchors: list[str] = []
    positives: list[str] = []
    negatives: list[str] = []
    for sent, entry in partners.items():
        ent, con = list(entry["entailment"]), list(entry["contradiction"])
        if not ent or not con:
            continue
        # Draw order matters for reproducibility: (s, +, -) picks positive then negative, (+, s, -) likewise.
        anchors.append(sent)
        positives.append(rng.choice(ent))
        negatives.append(rng.choice(con))
        anchors.append(rng.choice(ent))
        positives.append(sent)
        negatives.append(rng.choice(con))
    if not anchors:
        raise DataError(f"{p}: no sentence has both an entailment and a contradiction partner")
    return ColumnDataset(
        {"anchor": anchors, "positive": positives, "negative": negatives}, name=name if name is not None else p.stem
    )


def read_sentences(path: PathLike) -> list[str]:
    """Read one sentence per line (UTF-8, line ends stripped, text kept as is).

    Raises :class:`DataError` naming ``path:line`` for an empty or whitespace-only line (trailing blank lines at the
    end of the file are ignored), and for a file with no sentences.
    """
    p = Path(path)
    out: list[str] = []
    for lineno, fields in skip_blank(iter_split_lines(p, "\n"), p):
        text = fields[0]
        if not text.strip():
            raise DataError(f"{p}:{lineno}: empty line")
        out.append(text)
    if not out:
        raise DataError(f"{p}: no sentences (empty file)")
    return out
