"""Semantic search: the top-k corpus embeddings of each query by cosine similarity, in bounded memory."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["semantic_search"]


def _as_matrix(x: Any, name: str) -> Tensor:
    tensor = x.detach() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    if tensor.dim() == 1:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 2:
        raise ValueError(f"{name} must be [n, dim] (or [dim] for one vector), got shape {tuple(tensor.shape)}")
    return tensor


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    top_k: int = 10,
    chunk_size: int = 50_000,
    query_chunk_size: int = 1024,
) -> list[list[tuple[int, float]]]:
    """For each query, the ``top_k`` most cosine-similar corpus rows as ``(corpus_index, score)``, best first.

    The corpus is scanned ``chunk_size`` rows at a time (and the queries ``query_chunk_size`` at a time) with a
    running ``torch.topk``, so memory stays at ``query_chunk_size * (chunk_size + top_k)`` scores whatever the
    corpus size. Embeddings may be numpy arrays or tensors (a 1-D vector is one query); the work runs on the
    queries' device in float32. Equal scores come out in no particular order.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    for name, value in (("chunk_size", chunk_size), ("query_chunk_size", query_chunk_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    queries = _as_matrix(query_embeddings, "query_embeddings")
    corpus = _as_matrix(corpus_embeddings, "corpus_embeddings")
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(f"queries have dimension {queries.shape[1]} but the corpus has {corpus.shape[1]}")
    device = queries.device
    results: list[list[tuple[int, float]]] = []
    for q_start in range(0, queries.shape[0], query_chunk_size):
        q = torch.nn.functional.normalize(queries[q_start : q_start + query_chunk_size].float(), dim=1)  # [nq, d]
        best_scores = q.new_empty((q.shape[0], 0))  # [nq, <=top_k]
        best_index = torch.empty((q.shape[0], 0), dtype=torch.long, device=device)
        for c_start in range(0, corpus.shape[0], chunk_size):
            chunk = corpus[c_start : c_start + chunk_size].to(device=device, dtype=torch.float32)
            scores = q @ torch.nn.functional.normalize(chunk, dim=1).T  # [nq, chunk]
            k = min(top_k, scores.shape[1])
            chunk_scores, chunk_index = scores.topk(k, dim=1)
            merged_scores = torch.cat([best_scores, chunk_scores], dim=1)
            merged_index = torch.cat([best_index, chunk_index + c_start], dim=1)
            k = min(top_k, merged_scores.shape[1])
            best_scores, pick = merged_scores.topk(k, dim=1)
            best_index = merged_index.gather(1, pick)
        for scores_row, index_row in zip(best_scores.cpu().tolist(), best_index.cpu().tolist()):
            results.append(list(zip(index_row, scores_row)))
    return results
