"""Ranking metrics at k from a relevance matrix: accuracy, precision, recall, nDCG, MRR and MAP, vectorized.

The definitions are sentence-transformers' ``InformationRetrievalEvaluator``'s (binary relevance): precision@k
divides by k even when fewer than k documents exist, recall@k and the ideal DCG count every relevant document
(found or not), MAP@k divides by ``min(k, relevant)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["FAMILIES", "ranking_metrics", "relevance_hits"]

#: Metric families in sentence-transformers' report order.
FAMILIES = ("accuracy", "precision", "recall", "ndcg", "mrr", "map")


def ranking_metrics(hits: np.ndarray, n_relevant: np.ndarray, ks: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """``{"accuracy@1": ..., ...}`` averaged over queries, families in :data:`FAMILIES` order, ks as given.

    Args:
        hits: ``[n_queries, max_k]`` bool, whether the document ranked at each position is relevant (False past
            the end of the corpus); ``max_k`` must cover every k.
        n_relevant: ``[n_queries]`` number of relevant documents of each query (at least 1).
        ks: the cut-offs of each family (a key of :data:`FAMILIES` may be missing).
    """
    max_k = hits.shape[1]
    correct = hits.cumsum(axis=1)  # [nq, max_k] relevant documents within the first j + 1
    positions = np.arange(max_k)
    gains = hits / np.log2(positions + 2)  # [nq, max_k]
    ideal = np.cumsum(1.0 / np.log2(positions + 2))  # [max_k] best DCG with j + 1 relevant documents
    precision_at = np.where(hits, correct / (positions + 1), 0.0)  # [nq, max_k]
    first = np.where(hits.any(axis=1), hits.argmax(axis=1), max_k)  # [nq] first hit's position

    def at(family: str, k: int) -> np.ndarray:
        if family == "accuracy":
            return correct[:, k - 1] > 0
        if family == "precision":
            return correct[:, k - 1] / k
        if family == "recall":
            return correct[:, k - 1] / n_relevant
        if family == "ndcg":
            return gains[:, :k].sum(axis=1) / ideal[np.minimum(n_relevant, k).astype(np.int64) - 1]
        if family == "mrr":
            return np.where(first < k, 1.0 / (first + 1), 0.0)
        return precision_at[:, :k].sum(axis=1) / np.minimum(n_relevant, k)

    return {f"{family}@{k}": float(np.mean(at(family, k))) for family in FAMILIES for k in ks.get(family, ())}


def relevance_hits(ranked: np.ndarray, pairs: np.ndarray, n_corpus: int, max_k: int) -> np.ndarray:
    """``[n_queries, max_k]`` bool: whether each ranked corpus row is relevant to its query.

    Args:
        ranked: ``[n_queries, k]`` corpus rows, best first (``k <= max_k``; ranks past the corpus never hit).
        pairs: sorted ``query_row * n_corpus + corpus_row`` of every relevant (query, document) pair.
    """
    n_queries, k = ranked.shape
    keys = np.arange(n_queries, dtype=np.int64)[:, None] * n_corpus + ranked  # [nq, k]
    found = np.minimum(np.searchsorted(pairs, keys), max(len(pairs) - 1, 0))
    hits = np.zeros((n_queries, max_k), dtype=bool)
    hits[:, :k] = pairs[found] == keys if len(pairs) else False
    return hits
