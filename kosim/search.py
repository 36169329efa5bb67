"""Semantic search: the top-k corpus embeddings of each query by cosine similarity, in bounded memory."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["semantic_search", "topk_search"]


def _as_matrix(x: Any, name: str) -> Tensor:
    tensor = x.detach() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    if tensor.dim() == 1:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 2:
        raise ValueError(f"{name} must be [n, dim] (or [dim] for one vector), got shape {tuple(tensor.shape)}")
    return tensor


def topk_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    top_k: int = 10,
    score_function: str = "cos",
    chunk_size: int = 50_000,
    query_chunk_size: int = 1024,
) -> tuple[Tensor, Tensor]:
    """Exact top-k search: ``(scores [n_queries, k], indices [n_queries, k])``, best first, k = min(top_k, corpus).

    The one chunked search used by semantic search, the IR evaluator and hard-negative mining. The corpus is
    scanned ``chunk_size`` rows at a time (the queries ``query_chunk_size`` at a time), each chunk's top-k merged
    into a running top-k, so memory stays at ``query_chunk_size * (chunk_size + top_k)`` scores whatever the corpus
    size: never an ``n_queries x n_corpus`` matrix. ``score_function`` is ``"cos"`` (rows L2-normalised first) or
    ``"dot"``. Embeddings may be numpy arrays or tensors (a 1-D vector is one query); the work runs on the queries'
    device in float32, and the results stay there. Equal scores come out in no particular order.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    for name, value in (("chunk_size", chunk_size), ("query_chunk_size", query_chunk_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if score_function not in ("cos", "dot"):
        raise ValueError(f"score_function must be 'cos' or 'dot', got {score_function!r}")
    queries = _as_matrix(query_embeddings, "query_embeddings")
    corpus = _as_matrix(corpus_embeddings, "corpus_embeddings")
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(f"queries have dimension {queries.shape[1]} but the corpus has {corpus.shape[1]}")
    device = queries.device
    k_out = min(top_k, corpus.shape[0])
    all_scores = torch.empty((queries.shape[0], k_out), dtype=torch.float32, device=device)
    all_index = torch.empty((queries.shape[0], k_out), dtype=torch.long, device=device)
    for q_start in range(0, queries.shape[0], query_chunk_size):
        q = queries[q_start : q_start + query_chunk_size].to(dtype=torch.float32)  # [nq, d]
        if score_function == "cos":
            q = torch.nn.functional.normalize(q, dim=1)
        best_scores = q.new_empty((q.shape[0], 0))  # [nq, <=top_k]
        best_index = torch.empty((q.shape[0], 0), dtype=torch.long, device=device)
        for c_start in range(0, corpus.shape[0], chunk_size):
            chunk = corpus[c_start : c_start + chunk_size].to(device=device, dtype=torch.float32)  # [nc, d]
            if score_function == "cos":
                chunk = torch.nn.functional.normalize(chunk, dim=1)
            scores = q @ chunk.T  # [nq, nc]
            chunk_scores, chunk_index = scores.topk(min(top_k, scores.shape[1]), dim=1)
            if best_scores.shape[1] == 0:
                best_scores, best_index = chunk_scores, chunk_index + c_start
                continue
            merged_scores = torch.cat([best_scores, chunk_scores], dim=1)  # [nq, <=2k]
            merged_index = torch.cat([best_index, chunk_index + c_start], dim=1)
            best_scores, pick = merged_scores.topk(min(top_k, merged_scores.shape[1]), dim=1)
            best_index = merged_index.gather(1, pick)
        all_scores[q_start : q_start + q.shape[0]] = best_scores
        all_index[q_start : q_start + q.shape[0]] = best_index
    return all_scores, all_index


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    top_k: int = 10,
    chunk_size: int = 50_000,
    query_chunk_size: int = 1024,
) -> list[list[tuple[int, float]]]:
    """For each query, the ``top_k`` most cosine-similar corpus rows as ``(corpus_index, score)``, best first.

    Runs :func:`topk_search` (chunked, bounded memory: see there). Embeddings may be numpy arrays or tensors (a 1-D
    vector is one query); the work runs on the queries' device in float32. Equal scores come out in no particular
    order.
    """
    scores, index = topk_search(query_embeddings, corpus_embeddings, top_k, "cos", chunk_size, query_chunk_size)
    return [list(zip(i, s)) for i, s in zip(index.cpu().tolist(), scores.cpu().tolist())]
