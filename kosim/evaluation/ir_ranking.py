"""Exact top-k ranking of a corpus for each query, ties broken by ascending corpus id (the IR evaluator's order).

:func:`rank_corpus` searches with :func:`kosim.search.topk_search` in bounded chunks; only queries whose cut-off
falls inside a run of equal scores are ranked again by :func:`rank_with_ties`, which compares (-score, id rank).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from kosim.search import topk_search

__all__ = ["SEARCH_NAMES", "rank_corpus", "rank_with_ties"]

#: Score functions kosim ranks with (name in metric keys -> topk_search's name).
SEARCH_NAMES = {"cosine": "cos", "dot": "dot"}


def rank_corpus(
    queries: Tensor,
    corpus: Tensor,
    fn: str,
    k: int,
    id_rank: np.ndarray,
    corpus_chunk_size: int,
    query_chunk_size: int,
) -> np.ndarray:
    """The top ``min(k, n_corpus)`` corpus rows of each query ``[n_queries, k]``, by descending score then id rank.

    Args:
        queries: ``[n_queries, dim]`` float embeddings; corpus: ``[n_corpus, dim]``.
        fn: ``"cosine"`` or ``"dot"``.
        id_rank: ``[n_corpus]`` position of each corpus row's id in ascending id order (the tie-breaker).

    One extra hit is searched to see whether the cut-off falls inside a run of equal scores; only such rows
    (rare: duplicate documents, degenerate models) are ranked again with the id as tie-breaker.
    """
    n = corpus.shape[0]
    k = min(k, n)
    k_search = min(k + 1, n)
    scores, index = topk_search(queries, corpus, k_search, SEARCH_NAMES[fn], corpus_chunk_size, query_chunk_size)
    scores, index = scores.numpy(), index.numpy()  # [n_queries, k_search]
    tied = np.flatnonzero(scores[:, k] == scores[:, k - 1]) if k_search > k else np.empty(0, dtype=np.int64)
    scores, index = scores[:, :k].copy(), index[:, :k].copy()
    if tied.size:
        scores[tied], index[tied] = rank_with_ties(
            queries[torch.as_tensor(tied)], corpus, fn, k, id_rank, corpus_chunk_size
        )
    order = np.lexsort((id_rank[index], -scores), axis=1)  # by -score, then id rank
    return np.take_along_axis(index, order, axis=1)


def _chunk_scores(queries: Tensor, corpus: Tensor, start: int, size: int, fn: str) -> Tensor:
    chunk = corpus[start : start + size]  # [nc, dim]
    if fn == "cosine":
        chunk = torch.nn.functional.normalize(chunk, dim=1)
    return queries @ chunk.T  # [nq, nc]


def rank_with_ties(
    queries: Tensor, corpus: Tensor, fn: str, k: int, id_rank: np.ndarray, chunk_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k ``(scores, rows)``, each ``[n_queries, k]``, under the order (-score, id rank), in two bounded
    passes over the corpus.

    Pass 1 finds each query's k-th best score; pass 2 keeps everything above it and, among the documents equal
    to it, those with the smallest id ranks. Both passes compute each score the same way, so equality holds.
    """
    if fn == "cosine":
        queries = torch.nn.functional.normalize(queries, dim=1)
    n = corpus.shape[0]
    best = queries.new_empty((queries.shape[0], 0))
    for start in range(0, n, chunk_size):
        merged = torch.cat([best, _chunk_scores(queries, corpus, start, chunk_size, fn)], dim=1)
        best = merged.topk(min(k, merged.shape[1]), dim=1).values
    threshold = best[:, -1:]  # [nq, 1]
    ranks = torch.from_numpy(id_rank)
    keys = torch.empty((queries.shape[0], 0), dtype=torch.long)
    index = torch.empty((queries.shape[0], 0), dtype=torch.long)
    for start in range(0, n, chunk_size):
        scores = _chunk_scores(queries, corpus, start, chunk_size, fn)
        rank = ranks[start : start + scores.shape[1]].expand_as(scores)
        key = torch.where(scores > threshold, rank, torch.where(scores == threshold, rank + n, 2 * n))
        merged_keys = torch.cat([keys, key], dim=1)
        merged_index = torch.cat([index, torch.arange(start, start + scores.shape[1]).expand_as(scores)], dim=1)
        keys, pick = merged_keys.topk(min(k, merged_keys.shape[1]), dim=1, largest=False)
        index = merged_index.gather(1, pick)
    chosen = corpus[index.reshape(-1)].reshape(*index.shape, -1)  # [nq, k, dim]
    if fn == "cosine":
        chosen = torch.nn.functional.normalize(chosen, dim=2)
    scores = torch.einsum("qd,qkd->qk", queries, chosen)
    return scores.numpy(), index.numpy()
