"""In-batch ranking with a choice of interaction directions: MNRL's ``directions`` / ``partition_mode`` (GTE).

sentence-transformers' ``MultipleNegativesRankingLoss`` can score more than "query -> documents": also documents
against queries, queries against the other queries and documents against the other documents, either in one joint
softmax (the GTE "improved contrastive loss", Li et al. 2023) or one softmax per direction, averaged (the symmetric
InfoNCE of Jina embeddings). It can also add a stop-gradient "hardness" bonus to negative logits. This module is that
loss as a function of embeddings; with the default arguments it equals :class:`~kosim.losses.MultipleNegativesRankingLoss`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from kosim.losses.checks import check_columns, check_scale, upcast_half
from kosim.similarity import SIMILARITY_FUNCTIONS, resolve_similarity

__all__ = ["DIRECTIONS", "HARDNESS_MODES", "PARTITION_MODES", "DirectionalRankingLoss", "directional_ranking_loss"]

DIRECTIONS = ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")
PARTITION_MODES = ("joint", "per_direction")
HARDNESS_MODES = (None, "in_batch_negatives", "hard_negatives", "all_negatives")


def check_directions(directions: Sequence[str], partition_mode: str) -> tuple[str, ...]:
    """The directions as a tuple, refusing unknown names, a set without ``"query_to_doc"`` (it holds the positive)
    and ``per_direction`` with a same-type direction (its candidates never include the positive)."""
    if isinstance(directions, str):
        directions = (directions,)
    directions = tuple(directions)
    if not directions:
        raise ValueError("directions must name at least one direction")
    unknown = [d for d in directions if d not in DIRECTIONS]
    if unknown:
        raise ValueError(f"unknown directions {unknown}; valid directions: {list(DIRECTIONS)}")
    if "query_to_doc" not in directions:
        raise ValueError("directions must include 'query_to_doc' (the direction that scores the positive pair)")
    if partition_mode not in PARTITION_MODES:
        raise ValueError(f"partition_mode must be one of {list(PARTITION_MODES)}, got {partition_mode!r}")
    if partition_mode == "per_direction" and {"query_to_query", "doc_to_doc"} & set(directions):
        raise ValueError(
            "partition_mode='per_direction' cannot take 'query_to_query' or 'doc_to_doc': their candidates never "
            "include the positive, so a per-direction softmax is ill-defined; use partition_mode='joint'"
        )
    return directions


def _hardness_penalty(query_to_doc: Tensor, n_doc_columns: int, mode: str, strength: float) -> Tensor:
    """``strength * stop_grad(sim)`` on the negatives ``mode`` selects, 0 elsewhere: ``[b, b * n_doc_columns]``."""
    batch = query_to_doc.shape[0]
    own = torch.eye(batch, dtype=torch.bool, device=query_to_doc.device).repeat(1, n_doc_columns)  # own docs
    is_hard_negative_column = torch.arange(batch * n_doc_columns, device=query_to_doc.device) >= batch
    if mode == "in_batch_negatives":
        keep = ~own
    elif mode == "hard_negatives":
        keep = own & is_hard_negative_column
    else:  # all_negatives: everything but the positives
        keep = ~(own & ~is_hard_negative_column)
    return strength * query_to_doc.detach() * keep


def directional_ranking_loss(
    queries: Tensor,
    docs: Sequence[Tensor],
    similarity_fct: Any,
    scale: float,
    directions: Sequence[str] = ("query_to_doc",),
    partition_mode: str = "joint",
    hardness_mode: str | None = None,
    hardness_strength: float = 0.0,
) -> Tensor:
    """Mean over queries of ``log Z_i - s(q_i, d_i)``, ``Z_i`` summing the selected directions' exponentiated logits.

    Args:
        queries: ``[b, dim]`` anchors.
        docs: ``k >= 1`` tensors ``[b, dim]``: the positives, then hard negatives.
        similarity_fct: ``[n, d] x [m, d] -> [n, m]`` similarity (kosim's ``cos_sim``, ``dot_score``, ...).
        scale: logits are ``scale * similarity`` (plus the hardness bonus).
        directions: subset of :data:`DIRECTIONS`, always with ``"query_to_doc"``.
        partition_mode: ``"joint"`` (one softmax over all directions) or ``"per_direction"`` (the mean of the
            directions' log-partitions).
        hardness_mode, hardness_strength: add ``hardness_strength * stop_grad(sim)`` to the query-to-document logits
            of the selected negatives (``None`` turns it off).
    """
    batch = queries.shape[0]
    rows = torch.arange(batch, device=queries.device)
    all_docs = torch.cat(list(docs), dim=0)  # [b * k, dim]
    positives = docs[0]
    sims = {"query_to_doc": upcast_half(similarity_fct(queries, all_docs))}  # [b, b * k]
    if "query_to_query" in directions:
        q2q = upcast_half(similarity_fct(queries, queries))  # [b, b]
        sims["query_to_query"] = q2q.masked_fill(torch.eye(batch, dtype=torch.bool, device=q2q.device), -torch.inf)
    if "doc_to_query" in directions:
        sims["doc_to_query"] = upcast_half(similarity_fct(queries, positives)).T  # [b, b]: row i is positive i
    if "doc_to_doc" in directions:
        d2d = upcast_half(similarity_fct(all_docs, positives)).T  # [b, b * k]
        same_query = torch.eye(batch, dtype=torch.bool, device=d2d.device).repeat(1, len(docs))
        sims["doc_to_doc"] = d2d.masked_fill(same_query, -torch.inf)
    logits = {key: value * scale for key, value in sims.items()}
    if hardness_mode is not None and hardness_strength > 0.0:
        penalty = _hardness_penalty(sims["query_to_doc"], len(docs), hardness_mode, hardness_strength)
        logits["query_to_doc"] = logits["query_to_doc"] + penalty
    positive = logits["query_to_doc"][rows, rows]
    if partition_mode == "joint":
        log_z = torch.logsumexp(torch.cat(list(logits.values()), dim=1), dim=1)
    else:
        log_z = sum(torch.logsumexp(value, dim=1) for value in logits.values()) / len(logits)
    return (log_z - positive).mean()


class DirectionalRankingLoss(nn.Module):
    """sentence-transformers' ``MultipleNegativesRankingLoss`` with its ``directions`` / ``partition_mode`` /
    ``hardness_*`` arguments, as a function of embeddings (column 0 queries, column 1 positives, then negatives).

    ``directions=("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")`` with ``partition_mode="joint"``
    is GTE's improved contrastive loss; ``("query_to_doc", "doc_to_query")`` with ``"per_direction"`` equals
    ``MultipleNegativesRankingLoss(symmetric=True)``; the defaults equal plain MNRL.

    Args:
        scale: inverse temperature.
        similarity: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"`` (aliases work).
        directions: see :data:`DIRECTIONS`.
        partition_mode: ``"joint"`` or ``"per_direction"``.
        hardness_mode: ``None``, ``"in_batch_negatives"``, ``"hard_negatives"`` or ``"all_negatives"``.
        hardness_strength: the bonus' factor (``>= 0``); with a mode and strength 0 the loss is plain MNRL.
    """

    def __init__(
        self,
        scale: float = 20.0,
        similarity: str = "cosine",
        directions: Sequence[str] = ("query_to_doc",),
        partition_mode: str = "joint",
        hardness_mode: str | None = None,
        hardness_strength: float = 0.0,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        self.similarity = resolve_similarity(similarity)
        self.similarity_fct = SIMILARITY_FUNCTIONS[self.similarity]
        self.directions = check_directions(directions, partition_mode)
        self.partition_mode = partition_mode
        if hardness_mode not in HARDNESS_MODES:
            raise ValueError(f"hardness_mode must be one of {list(HARDNESS_MODES)}, got {hardness_mode!r}")
        self.hardness_mode = hardness_mode
        if isinstance(hardness_strength, bool) or not isinstance(hardness_strength, (int, float)):
            raise TypeError(f"hardness_strength must be a number, got {hardness_strength!r}")
        if not hardness_strength >= 0.0:
            raise ValueError(f"hardness_strength must be >= 0, got {hardness_strength}")
        self.hardness_strength = float(hardness_strength)

    def forward(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        text_ids: list[Tensor] | None = None,
    ) -> Tensor:
        """Scalar loss from ``k >= 2`` columns of ``[batch, dim]`` embeddings; ``labels`` and ``text_ids`` are ignored."""
        columns = check_columns(embeddings, type(self).__name__, min_columns=2)
        return directional_ranking_loss(
            columns[0],
            columns[1:],
            self.similarity_fct,
            self.scale,
            self.directions,
            self.partition_mode,
            self.hardness_mode,
            self.hardness_strength,
        )

    def config(self) -> dict[str, Any]:
        """Parameters for the model card, with sentence-transformers' names."""
        return {
            "scale": self.scale,
            "similarity_fct": self.similarity_fct.__name__,
            "directions": self.directions,
            "partition_mode": self.partition_mode,
            "hardness_mode": self.hardness_mode,
            "hardness_strength": self.hardness_strength,
        }

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value!r}" for key, value in self.config().items())
