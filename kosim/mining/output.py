"""The mined rows in sentence-transformers' output formats, their conversion to a ColumnDataset, and TSV/JSONL files.

Formats (columns named after the input's anchor and positive columns, here ``anchor`` / ``positive``):

- ``"triplet"``: ``anchor, positive, negative`` (one row per negative) [+ ``scores`` = ``[pos, neg]``];
- ``"n-tuple"``: ``anchor, positive, negative_1 .. negative_n`` (pairs with fewer than ``n`` negatives are dropped)
  [+ ``scores`` = ``[pos, neg_1, .., neg_n]``];
- ``"labeled-pair"``: ``anchor, positive, label`` (1 for the positive, 0 for a negative; ``score`` instead of
  ``label`` with scores), rows grouped by anchor: its positives, then its negatives;
- ``"labeled-list"``: ``anchor, positive`` = ``[positive, negatives..]``, ``labels`` = ``[1, 0, ..]`` (or
  ``scores``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from kosim.mining.pairs import MiningPairs

__all__ = ["OUTPUT_FORMATS", "build_columns", "to_column_dataset", "write_mined"]

OUTPUT_FORMATS = ("triplet", "n-tuple", "labeled-pair", "labeled-list")


def build_columns(
    output_format: str,
    output_scores: bool,
    pairs: MiningPairs,
    pair_scores: Tensor,
    neg_index: Tensor,
    neg_scores: Tensor,
) -> tuple[dict[str, list], np.ndarray]:
    """The output columns, and the scores of the negatives they hold (for the summary), as sentence-transformers.

    ``pair_scores [pairs]`` are the (query, positive) scores in the pairs' order; ``neg_index`` / ``neg_scores``
    ``[queries, n]`` the picked negatives (``-inf``: none found for that slot).
    """
    anchor, positive = pairs.anchor_column, pairs.positive_column
    q, docs, queries = pairs.pair_query, pairs.pair_doc, pairs.queries
    corpus = pairs.corpus
    valid = np.isfinite(neg_scores.numpy())  # [queries, n]
    if output_format == "labeled-pair":
        return _labeled_pairs(pairs, pair_scores, neg_index, neg_scores, valid, output_scores)
    rep_index, rep_scores, rep_valid = neg_index[q].numpy(), neg_scores[q].numpy(), valid[q]  # [pairs, n]
    pos = pair_scores.numpy()
    if output_format == "triplet":
        row, col = np.nonzero(rep_valid)  # row-major: each pair's negatives in rank order
        out: dict[str, list] = {
            anchor: [queries[i] for i in q[row]],
            positive: [corpus[i] for i in docs[row]],
            "negative": [corpus[i] for i in rep_index[row, col]],
        }
        if output_scores:
            out["scores"] = np.stack([pos[row], rep_scores[row, col]], axis=1).tolist()
        return out, rep_scores[row, col]
    if output_format == "n-tuple":
        keep = np.flatnonzero(rep_valid.all(axis=1))
        out = {anchor: [queries[i] for i in q[keep]], positive: [corpus[i] for i in docs[keep]]}
        for j in range(rep_index.shape[1]):
            out[f"negative_{j + 1}"] = [corpus[i] for i in rep_index[keep, j]]
        if output_scores:
            out["scores"] = np.concatenate([pos[keep, None], rep_scores[keep]], axis=1).tolist()
        return out, rep_scores[keep].reshape(-1)
    keep = np.flatnonzero(rep_valid.any(axis=1))  # labeled-list
    docs_col, score_col = [], []
    for p in keep.tolist():
        found = np.flatnonzero(rep_valid[p])
        docs_col.append([corpus[docs[p]]] + [corpus[i] for i in rep_index[p, found]])
        score_col.append([float(pos[p])] + rep_scores[p, found].tolist() if output_scores else [1] + [0] * len(found))
    out = {
        anchor: [queries[i] for i in q[keep]],
        positive: docs_col,
        "scores" if output_scores else "labels": score_col,
    }
    return out, rep_scores[rep_valid]


def _labeled_pairs(pairs, pair_scores, neg_index, neg_scores, valid, output_scores):
    anchor, positive = pairs.anchor_column, pairs.positive_column
    pos, n_index, n_scores = pair_scores.numpy(), neg_index.numpy(), neg_scores.numpy()
    starts = np.searchsorted(pairs.pair_query, np.arange(len(pairs.queries) + 1))
    texts_a, texts_b, values = [], [], []
    for qi, query in enumerate(pairs.queries):
        lo, hi = starts[qi], starts[qi + 1]
        found = np.flatnonzero(valid[qi])
        texts_a.extend([query] * (hi - lo + len(found)))
        texts_b.extend(pairs.corpus[i] for i in pairs.pair_doc[lo:hi])
        texts_b.extend(pairs.corpus[i] for i in n_index[qi, found])
        if output_scores:
            values.extend(pos[lo:hi].tolist() + n_scores[qi, found].tolist())
        else:
            values.extend([1] * (hi - lo) + [0] * len(found))
    out = {anchor: texts_a, positive: texts_b, "score" if output_scores else "label": values}
    return out, n_scores[valid]


def to_column_dataset(columns: dict[str, list], label: str | None = None, name: str = "mined"):
    """A kosim :class:`~kosim.data.ColumnDataset` of the mined text columns, with ``label`` as its labels: a numeric
    column such as ``"label"`` / ``"score"``, or ``"scores"`` (with ``output_scores``: the teacher's score of the
    positive, then of each negative, a ``[rows, 1 + negatives]`` label, which MarginMSELoss turns into margins).
    A ``scores`` column that is not the label is left out; ``labeled-list`` rows cannot become a dataset at all."""
    from kosim.data import ColumnDataset

    if any(v and isinstance(v[0], list) and v[0] and isinstance(v[0][0], str) for v in columns.values()):
        raise ValueError("labeled-list rows hold lists of documents: they cannot become a ColumnDataset")
    if label is not None and label not in columns:
        raise KeyError(f"label {label!r} is not a mined column {list(columns)}")
    texts = {k: v for k, v in columns.items() if k != label and v and isinstance(v[0], str)}
    return ColumnDataset(texts, None if label is None else columns[label], name=name)


def _tsv_fields(columns: dict[str, list]) -> tuple[list[str], list[list[Any]]]:
    """TSV header and columns: a list column of one length everywhere (``scores``) becomes ``scores_0, ..``."""
    header, cols = [], []
    for key, values in columns.items():
        if values and isinstance(values[0], list):
            lengths = {len(v) for v in values}
            if len(lengths) != 1:
                raise ValueError(f"column {key!r} holds lists of different lengths: write .jsonl instead of .tsv")
            for j in range(lengths.pop()):
                header.append(f"{key}_{j}")
                cols.append([v[j] for v in values])
        else:
            header.append(key)
            cols.append(values)
    return header, cols


def _write_tsv(f, columns: dict[str, list], n_rows: int) -> None:
    header, cols = _tsv_fields(columns)
    f.write("\t".join(header) + "\n")
    for i in range(n_rows):
        fields = [str(c[i]) for c in cols]
        for name, field in zip(header, fields):
            if "\t" in field or "\n" in field or "\r" in field:
                raise ValueError(f"row {i}, column {name!r}: a tab or line break cannot go into a TSV field")
        f.write("\t".join(fields) + "\n")


def write_mined(columns: dict[str, list], path: str | os.PathLike) -> Path:
    """Write the mined rows to ``path`` (``.jsonl``: one object per row, lists kept; ``.tsv``: a header line and no
    quoting, list columns spread out as ``name_0, name_1, ..``), atomically; ``kosim train`` reads both, e.g.
    ``format = "tsv", columns = ["anchor", "positive", "negative"]``. A text holding a tab or a line break cannot
    go into a TSV: a ValueError names its row and column."""
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in (".tsv", ".jsonl"):
        raise ValueError(f"mined output must be a .tsv or .jsonl file, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    keys = list(columns)
    n_rows = len(columns[keys[0]]) if keys else 0
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            if suffix == ".jsonl":
                for i in range(n_rows):
                    f.write(json.dumps({k: columns[k][i] for k in keys}, ensure_ascii=False) + "\n")
            else:
                _write_tsv(f, columns, n_rows)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
