"""Triplet loss: the anchor must be closer to its positive than to its negative by a margin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from kosim.losses.checks import check_columns, upcast_half
from kosim.similarity import pairwise_cos_sim, pairwise_euclidean_sim, pairwise_manhattan_sim

__all__ = ["TRIPLET_DISTANCES", "TripletLoss", "resolve_distance"]


def cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """``1 - cos(a[i], b[i])``: ``[n]``."""
    return 1 - pairwise_cos_sim(a, b)


def euclidean_distance(a: Tensor, b: Tensor) -> Tensor:
    """``||a[i] - b[i]||_2``: ``[n]``."""
    return -pairwise_euclidean_sim(a, b)


def manhattan_distance(a: Tensor, b: Tensor) -> Tensor:
    """``||a[i] - b[i]||_1``: ``[n]``."""
    return -pairwise_manhattan_sim(a, b)


# sentence-transformers' TripletDistanceMetric members, by kosim's lowercase names.
TRIPLET_DISTANCES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "euclidean": euclidean_distance,
    "cosine": cosine_distance,
    "manhattan": manhattan_distance,
}


def resolve_distance(name: str, choices: dict[str, Any], what: str) -> str:
    """The canonical (lowercase) key of ``choices`` for ``name``; also takes sentence-transformers' enum spellings
    (``"TripletDistanceMetric.EUCLIDEAN"``, ``"COSINE_DISTANCE"``)."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str naming one of {sorted(choices)}, got {type(name).__name__}")
    key = name.rsplit(".", 1)[-1].lower()
    if key not in choices and key.endswith("_distance") and key.removesuffix("_distance") in choices:
        key = key.removesuffix("_distance")
    if key not in choices:
        raise ValueError(f"unknown {what} {name!r}; expected one of {sorted(choices)}")
    return key


class TripletLoss(nn.Module):
    """``mean(relu(d(a, p) - d(a, n) + triplet_margin))`` over (anchor, positive, negative) rows.

    Takes exactly three ``[batch, dim]`` columns (labels are ignored) and equals sentence-transformers'
    ``TripletLoss``.

    Args:
        distance_metric: ``"euclidean"`` (the default, as in sentence-transformers), ``"cosine"`` (``1 - cos``) or
            ``"manhattan"``.
        triplet_margin: how much farther the negative must be than the positive (5 suits unnormalised euclidean
            distances; use about 0.5 for cosine).
    """

    citation = """@inproceedings{schroff2015facenet,
  title     = {{FaceNet}: A Unified Embedding for Face Recognition and Clustering},
  author    = {Florian Schroff and Dmitry Kalenichenko and James Philbin},
  booktitle = {Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition},
  year      = {2015}
}"""

    def __init__(self, distance_metric: str = "euclidean", triplet_margin: float = 5.0) -> None:
        super().__init__()
        self.distance_metric = resolve_distance(distance_metric, TRIPLET_DISTANCES, "distance_metric")
        self.distance_fct = TRIPLET_DISTANCES[self.distance_metric]
        if isinstance(triplet_margin, bool) or not isinstance(triplet_margin, (int, float)):
            raise TypeError(f"triplet_margin must be a number, got {triplet_margin!r}")
        self.triplet_margin = float(triplet_margin)

    def forward(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        text_ids: list[Tensor] | None = None,
    ) -> Tensor:
        """Scalar loss from three ``[batch, dim]`` columns; ``labels`` and ``text_ids`` are ignored."""
        anchor, positive, negative = check_columns(embeddings, type(self).__name__, min_columns=3, max_columns=3)
        to_positive = upcast_half(self.distance_fct(anchor, positive))  # [batch]
        to_negative = upcast_half(self.distance_fct(anchor, negative))  # [batch]
        return F.relu(to_positive - to_negative + self.triplet_margin).mean()

    def config(self) -> dict[str, Any]:
        """Parameters for the model card, with sentence-transformers' enum name for the distance."""
        return {
            "distance_metric": f"TripletDistanceMetric.{self.distance_metric.upper()}",
            "triplet_margin": self.triplet_margin,
        }
