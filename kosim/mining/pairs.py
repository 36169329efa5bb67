"""The (anchor, positive) pairs of a mining run: deduplicated queries and corpus, and each query's positives."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kosim.utils.suggest import did_you_mean

__all__ = ["MiningPairs", "collect_pairs", "dataset_columns"]


def dataset_columns(dataset: Any) -> tuple[list[str], Any]:
    """The column names of a ColumnDataset or a ``{column: texts}`` mapping, and a ``name -> texts`` getter."""
    from kosim.data import ColumnDataset

    if isinstance(dataset, ColumnDataset):
        return dataset.column_names, dataset.column
    if isinstance(dataset, Mapping):
        return list(dataset), lambda name: dataset[name]
    raise TypeError(f"dataset must be a kosim ColumnDataset or a {{column: texts}} dict, got {type(dataset).__name__}")


def _texts(values: Any, what: str) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
        raise TypeError(f"{what} must be a list of str, got {type(values).__name__}")
    values = list(values)
    for i, text in enumerate(values):
        if not isinstance(text, str):
            raise TypeError(f"{what}[{i}] must be a str, got {type(text).__name__}")
    return values


def _pick_column(name: str | None, columns: list[str], position: int, what: str) -> str:
    if name is None:
        if len(columns) <= position:
            raise ValueError(f"the dataset has columns {columns}: name the {what} column ({what}_column_name)")
        return columns[position]
    if name not in columns:
        raise KeyError(f"{what}_column_name {name!r} is not a dataset column {columns}{did_you_mean(name, columns)}")
    return name


@dataclass
class MiningPairs:
    """Deduplicated texts and the positive pairs between them, in sentence-transformers' order.

    ``queries`` are the distinct anchors in first-seen order; ``corpus`` the distinct texts of the separate corpus
    followed by the positives (first-seen order). ``pair_query[p]``, ``pair_doc[p]`` are the distinct (query,
    positive) pairs grouped by query (queries in order, each query's positives in first-seen order).
    ``max_rows_per_query`` counts dataset rows per anchor, duplicates included (what sizes the candidate window).
    """

    anchor_column: str
    positive_column: str
    queries: list[str]
    corpus: list[str]
    corpus_index: dict[str, int]
    pair_query: np.ndarray  # [pairs] int64, non-decreasing
    pair_doc: np.ndarray  # [pairs] int64
    max_rows_per_query: int
    num_rows: int

    @property
    def n_positives(self) -> np.ndarray:
        """Distinct positives per query: ``[queries]`` (every query has at least one)."""
        return np.bincount(self.pair_query, minlength=len(self.queries))


def collect_pairs(
    dataset: Any,
    anchor_column_name: str | None,
    positive_column_name: str | None,
    corpus: Sequence[str] | None,
) -> MiningPairs:
    """Read the pairs out of ``dataset`` (first two columns unless named) and deduplicate queries and corpus."""
    columns, get = dataset_columns(dataset)
    anchor_name = _pick_column(anchor_column_name, columns, 0, "anchor")
    positive_name = _pick_column(positive_column_name, columns, 1, "positive")
    if anchor_name == positive_name:
        raise ValueError(f"anchor and positive column are both {anchor_name!r}")
    anchors = _texts(get(anchor_name), f"dataset column {anchor_name!r}")
    positives = _texts(get(positive_name), f"dataset column {positive_name!r}")
    if not anchors:
        raise ValueError("the dataset is empty: nothing to mine")
    extra = _texts(corpus, "corpus") if corpus is not None else []
    # Every positive is a corpus text too (it has to be found to be excluded); duplicates keep the first position.
    corpus_index: dict[str, int] = {}
    for text in extra + positives:
        corpus_index.setdefault(text, len(corpus_index))
    query_index: dict[str, int] = {}
    for text in anchors:
        query_index.setdefault(text, len(query_index))
    seen: dict[tuple[int, int], None] = {}
    for anchor, positive in zip(anchors, positives):
        seen.setdefault((query_index[anchor], corpus_index[positive]), None)
    pairs = np.array(list(seen), dtype=np.int64).reshape(-1, 2)
    order = np.argsort(pairs[:, 0], kind="stable")  # group by query, positives in first-seen order
    return MiningPairs(
        anchor_column=anchor_name,
        positive_column=positive_name,
        queries=list(query_index),
        corpus=list(corpus_index),
        corpus_index=corpus_index,
        pair_query=pairs[order, 0],
        pair_doc=pairs[order, 1],
        max_rows_per_query=max(Counter(anchors).values()),
        num_rows=len(anchors),
    )
