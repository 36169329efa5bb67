"""Similarity functions between embeddings, with sentence-transformers' names and signs.

Distances are negated so that for every function "larger means more similar".
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "SIMILARITY_FUNCTIONS",
    "PAIRWISE_FUNCTIONS",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "manhattan_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "resolve_similarity",
    "to_tensor",
]


def to_tensor(x: Tensor | np.ndarray | list) -> Tensor:
    """Turn an array-like of embeddings into a tensor with at least 2 dimensions: `[n, dim]`."""
    if not isinstance(x, Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.dim() == 1:
        x = x.unsqueeze(0)
    return x


def cos_sim(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of every row of `a` with every row of `b`: `[n, d] x [m, d] -> [n, m]`."""
    a, b = to_tensor(a), to_tensor(b)
    a = torch.nn.functional.normalize(a, p=2, dim=-1)
    b = torch.nn.functional.normalize(b, p=2, dim=-1)
    return a @ b.T


def dot_score(a: Tensor, b: Tensor) -> Tensor:
    """Dot product of every row of `a` with every row of `b`: `[n, m]`."""
    a, b = to_tensor(a), to_tensor(b)
    return a @ b.T


def euclidean_sim(a: Tensor, b: Tensor) -> Tensor:
    """Negative Euclidean distance between every pair of rows: `[n, m]`."""
    a, b = to_tensor(a), to_tensor(b)
    return -torch.cdist(a, b, p=2.0)


def manhattan_sim(a: Tensor, b: Tensor) -> Tensor:
    """Negative Manhattan (L1) distance between every pair of rows: `[n, m]`."""
    a, b = to_tensor(a), to_tensor(b)
    return -torch.cdist(a, b, p=1.0)


def pairwise_cos_sim(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of `a[i]` with `b[i]`: `[n, d] x [n, d] -> [n]`."""
    a, b = to_tensor(a), to_tensor(b)
    a = torch.nn.functional.normalize(a, p=2, dim=-1)
    b = torch.nn.functional.normalize(b, p=2, dim=-1)
    return (a * b).sum(dim=-1)


def pairwise_dot_score(a: Tensor, b: Tensor) -> Tensor:
    """Dot product of `a[i]` with `b[i]`: `[n]`."""
    a, b = to_tensor(a), to_tensor(b)
    return (a * b).sum(dim=-1)


def pairwise_euclidean_sim(a: Tensor, b: Tensor) -> Tensor:
    """Negative Euclidean distance between `a[i]` and `b[i]`: `[n]`."""
    a, b = to_tensor(a), to_tensor(b)
    return -torch.sqrt(((a - b) ** 2).sum(dim=-1))


def pairwise_manhattan_sim(a: Tensor, b: Tensor) -> Tensor:
    """Negative Manhattan distance between `a[i]` and `b[i]`: `[n]`."""
    a, b = to_tensor(a), to_tensor(b)
    return -(a - b).abs().sum(dim=-1)


SimilarityFn = Callable[[Tensor, Tensor], Tensor]

SIMILARITY_FUNCTIONS: dict[str, SimilarityFn] = {
    "cosine": cos_sim,
    "dot": dot_score,
    "euclidean": euclidean_sim,
    "manhattan": manhattan_sim,
}

PAIRWISE_FUNCTIONS: dict[str, SimilarityFn] = {
    "cosine": pairwise_cos_sim,
    "dot": pairwise_dot_score,
    "euclidean": pairwise_euclidean_sim,
    "manhattan": pairwise_manhattan_sim,
}

_ALIASES = {"cos_sim": "cosine", "cos": "cosine", "dot_score": "dot", "dot_product": "dot"}


def resolve_similarity(name: str) -> str:
    """Canonical name (`cosine`, `dot`, `euclidean`, `manhattan`) for a similarity name or alias."""
    if not isinstance(name, str):
        raise TypeError(f"similarity function name must be a str, got {type(name).__name__}")
    canonical = _ALIASES.get(name, name)
    if canonical not in SIMILARITY_FUNCTIONS:
        raise ValueError(f"unknown similarity function {name!r}; expected one of {sorted(SIMILARITY_FUNCTIONS)}")
    return canonical
