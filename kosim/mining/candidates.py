"""Candidate negatives: exact chunked search, the filters (positives, margins, score bounds), then the pick.

Scores are dot products of L2-normalised embeddings (= cosine similarity). A removed candidate gets the score
``-inf``; the arrays keep their shape ``[queries, window]`` throughout, so no per-query Python work is done.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from kosim.mining.pairs import MiningPairs

__all__ = ["filter_candidates", "positive_scores", "search_candidates", "select_negatives"]

NEG_INF = -float("inf")


def search_candidates(
    query_embeddings: np.ndarray,
    corpus_embeddings: np.ndarray,
    window: int,
    device: torch.device,
    query_chunk_size: int,
    corpus_chunk_size: int,
    progress: bool,
) -> tuple[Tensor, Tensor]:
    """The ``window`` best corpus rows of each query: ``(scores [q, window] float32, indices [q, window] int64)``.

    Runs :func:`kosim.search.topk_search` one block of ``query_chunk_size`` queries at a time (so a tqdm bar can
    count them) on ``device``; a corpus smaller than ``window`` leaves the last columns at ``-inf`` / index ``-1``.
    Memory: the two embedding matrices plus ``query_chunk_size * (corpus_chunk_size + window)`` scores.
    """
    from tqdm.auto import tqdm

    from kosim.search import topk_search

    n_queries, k = len(query_embeddings), min(window, len(corpus_embeddings))
    corpus = torch.from_numpy(corpus_embeddings).to(device)  # [docs, dim]
    queries = torch.from_numpy(query_embeddings)  # [queries, dim], moved block by block
    scores = torch.full((n_queries, window), NEG_INF, dtype=torch.float32)
    indices = torch.full((n_queries, window), -1, dtype=torch.long)
    bar = tqdm(total=n_queries, desc="Searching", unit="query", disable=not progress)
    try:
        for start in range(0, n_queries, query_chunk_size):
            block = queries[start : start + query_chunk_size].to(device)
            s, i = topk_search(block, corpus, k, "dot", corpus_chunk_size, query_chunk_size)  # [b, k]
            scores[start : start + len(block), :k] = s.cpu()
            indices[start : start + len(block), :k] = i.cpu()
            bar.update(len(block))
    finally:
        bar.close()
    return scores, indices


def positive_scores(
    query_embeddings: np.ndarray, corpus_embeddings: np.ndarray, pairs: MiningPairs, chunk: int = 65536
) -> Tensor:
    """Cosine score of every (query, positive) pair, in the pairs' grouped order: ``[pairs]`` float32."""
    out = np.empty(len(pairs.pair_query), dtype=np.float32)
    for start in range(0, len(out), chunk):
        q = query_embeddings[pairs.pair_query[start : start + chunk]]  # [c, dim]
        d = corpus_embeddings[pairs.pair_doc[start : start + chunk]]  # [c, dim]
        out[start : start + len(q)] = np.einsum("ij,ij->i", q, d)
    return torch.from_numpy(out)


def _drop(scores: Tensor, removed: Tensor, counts: dict[str, int], reason: str) -> None:
    removed &= torch.isfinite(scores)  # count only candidates still alive
    counts[reason] = int(removed.sum())
    scores[removed] = NEG_INF


def filter_candidates(
    scores: Tensor,
    indices: Tensor,
    pairs: MiningPairs,
    pair_scores: Tensor,
    include_positives: bool,
    absolute_margin: float | None,
    relative_margin: float | None,
    max_score: float | None,
    min_score: float | None,
) -> dict[str, int]:
    """Set the score of every disqualified candidate to ``-inf`` in place; the number removed per reason.

    In order: padding, the query's own positives (unless ``include_positives``), the margins against the query's
    hardest (lowest-scoring) positive (``absolute``: ``score + margin > positive``; ``relative``: ``score >
    positive - |positive| * margin``), then ``max_score`` and ``min_score``. The anchor text itself, found in the
    corpus, is not removed (as in sentence-transformers): ``range_min`` or ``max_score`` skip such near-copies.
    With a margin, ``counts["margin_emptied"]`` is the number of anchors it left with no candidate at all.
    """
    scores[indices < 0] = NEG_INF
    counts = {"candidates": int(torch.isfinite(scores).sum())}
    if not include_positives:
        n_docs = len(pairs.corpus)
        candidate_keys = (torch.arange(len(scores)).unsqueeze(1) * n_docs + indices).numpy()  # [q, window]
        positive_keys = pairs.pair_query * n_docs + pairs.pair_doc
        _drop(scores, torch.from_numpy(np.isin(candidate_keys, positive_keys)), counts, "positive")
    if absolute_margin is not None or relative_margin is not None:
        alive = torch.isfinite(scores).any(1)  # [q] anchors with a candidate left before the margins
        starts = np.flatnonzero(np.r_[True, pairs.pair_query[1:] != pairs.pair_query[:-1]])
        hardest = torch.from_numpy(np.minimum.reduceat(pair_scores.numpy(), starts)).unsqueeze(1)  # [q, 1]
        if absolute_margin is not None:
            _drop(scores, scores + absolute_margin > hardest, counts, "absolute_margin")
        if relative_margin is not None:
            _drop(scores, scores > hardest - hardest.abs() * relative_margin, counts, "relative_margin")
        # anchors whose whole window scored within the margin: the positive ranks at or below range_max
        counts["margin_emptied"] = int((alive & ~torch.isfinite(scores).any(1)).sum())
    if max_score is not None:
        _drop(scores, scores > max_score, counts, "max_score")
    if min_score is not None:
        _drop(scores, scores < min_score, counts, "min_score")
    return counts


def select_negatives(
    scores: Tensor,
    indices: Tensor,
    range_min: int,
    range_max: int,
    num_negatives: int,
    sampling_strategy: str,
    seed: int,
) -> tuple[Tensor, Tensor]:
    """``num_negatives`` negatives per query from the survivors ranked ``range_min .. range_max - 1``.

    Returns ``(corpus indices [q, n], scores [q, n])``, best first; a slot with no valid candidate has score
    ``-inf``. ``"top"`` takes the best survivors; ``"random"`` draws ``n`` of the valid ones uniformly without
    replacement from a ``torch.Generator`` seeded with ``seed`` (all of them, padded by invalid slots, when fewer
    than ``n`` are valid), then orders them best first.
    """
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, range_min:range_max]  # [q, width]
    ranked_scores, ranked_index = scores.gather(1, order), indices.gather(1, order)
    if sampling_strategy == "top":
        return ranked_index[:, :num_negatives], ranked_scores[:, :num_negatives]
    width = ranked_scores.shape[1]
    options = (width - torch.isinf(ranked_scores).sum(1)).clamp(min=num_negatives)  # [q]
    generator = torch.Generator().manual_seed(seed)
    keys = torch.rand(ranked_scores.shape, generator=generator)
    keys[torch.arange(width).unsqueeze(0) >= options.unsqueeze(1)] = 2.0  # never drawn: rand() < 1
    pick = keys.argsort(dim=1)[:, :num_negatives].sort(dim=1).values  # [q, n], ascending rank = best first
    return ranked_index.gather(1, pick), ranked_scores.gather(1, pick)
