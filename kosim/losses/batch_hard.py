"""Batch triplet losses over (sentence, class label) data: every batch row is an anchor, triplets are mined in-batch.

The four losses of sentence-transformers (after Hermans et al. 2017, "In Defense of the Triplet Loss", and Schroff
et al. 2015, FaceNet) take ONE text column and integer class labels. They need batches holding several rows of
several labels: train them with the ``group_by_label`` batch sampler (:mod:`kosim.data.group_by_label`).

* ``BatchHardTripletLoss``: per anchor, its farthest positive against its closest negative.
* ``BatchHardSoftMarginTripletLoss``: the same with ``softplus`` instead of a hinge and a margin.
* ``BatchSemiHardTripletLoss``: per (anchor, positive), the closest negative farther than the positive (the
  farthest negative when there is none).
* ``BatchAllTripletLoss``: every valid triplet, averaged over those with a positive loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kosim.losses.checks import check_columns, check_labels, upcast_half
from kosim.losses.triplet import resolve_distance
from kosim.similarity import cos_sim

__all__ = [
    "BATCH_DISTANCES",
    "BatchAllTripletLoss",
    "BatchHardSoftMarginTripletLoss",
    "BatchHardTripletLoss",
    "BatchSemiHardTripletLoss",
    "cosine_distance_matrix",
    "euclidean_distance_matrix",
]


def euclidean_distance_matrix(embeddings: Tensor, squared: bool = False) -> Tensor:
    """``[b, b]`` L2 distances from ``|x|^2 - 2 x.y + |y|^2`` (clamped at 0), with a zero gradient where a distance is 0.

    The square root's gradient is infinite at 0 (the diagonal): there it is taken of ``1e-16`` and multiplied by 0.
    """
    embeddings = upcast_half(embeddings)
    dot = embeddings @ embeddings.T  # [b, b]
    square_norm = dot.diagonal()
    distances = (square_norm.unsqueeze(0) - 2.0 * dot + square_norm.unsqueeze(1)).clamp_min(0.0)
    if squared:
        return distances
    zero = (distances == 0).to(distances.dtype)
    return (1.0 - zero) * torch.sqrt(distances + zero * 1e-16)


def cosine_distance_matrix(embeddings: Tensor) -> Tensor:
    """``[b, b]`` cosine distances ``1 - cos(x_i, x_j)``."""
    return 1 - upcast_half(cos_sim(embeddings, embeddings))


# sentence-transformers' BatchHardTripletLossDistanceFunction members by kosim's lowercase names.
BATCH_DISTANCES: dict[str, Callable[[Tensor], Tensor]] = {
    "euclidean": euclidean_distance_matrix,
    "squared_euclidean": lambda e: euclidean_distance_matrix(e, squared=True),
    "cosine": cosine_distance_matrix,
}


def _class_labels(labels: Tensor | None, batch: int, name: str, device: torch.device) -> Tensor:
    return check_labels(labels, batch, name).to(device)


class _BatchTripletLoss(nn.Module):
    """One text column and ``[batch]`` labels in, the ``[b, b]`` distance matrix and label masks out."""

    def __init__(self, distance_metric: str = "euclidean", margin: float | None = 5.0) -> None:
        super().__init__()
        self.distance_metric = resolve_distance(distance_metric, BATCH_DISTANCES, "distance_metric")
        self.distance_fct = BATCH_DISTANCES[self.distance_metric]
        if margin is not None and (isinstance(margin, bool) or not isinstance(margin, (int, float))):
            raise TypeError(f"margin must be a number, got {margin!r}")
        self.margin = None if margin is None else float(margin)

    def _inputs(self, embeddings: list[Tensor], labels: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """``(distances [b, b], same_label [b, b], positive_pair [b, b])``; positive pairs exclude the diagonal."""
        name = type(self).__name__
        (rows,) = check_columns(embeddings, name, min_columns=1, max_columns=1)
        labels = _class_labels(labels, rows.shape[0], name, rows.device)
        distances = self.distance_fct(rows)
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        eye = torch.eye(rows.shape[0], dtype=torch.bool, device=rows.device)
        return distances, same, same & ~eye

    def config(self) -> dict[str, Any]:
        """Parameters for the model card (the distance by sentence-transformers' function name)."""
        names = {"euclidean": "euclidean_distance", "squared_euclidean": "<lambda>", "cosine": "cosine_distance"}
        config: dict[str, Any] = {"distance_metric": names[self.distance_metric]}
        if self.margin is not None:
            config["margin"] = self.margin
        return config


def _hardest(distances: Tensor, same: Tensor, positive_pair: Tensor) -> tuple[Tensor, Tensor]:
    """Per anchor ``[b, 1]``: the largest positive distance (0 without one) and the smallest negative distance
    (its row's largest distance without one)."""
    hardest_positive = (distances * positive_pair).max(dim=1, keepdim=True).values
    row_max = distances.max(dim=1, keepdim=True).values
    hardest_negative = (distances + row_max * same).min(dim=1, keepdim=True).values
    return hardest_positive, hardest_negative


class BatchHardTripletLoss(_BatchTripletLoss):
    """``mean(relu(max_p d(a, p) - min_n d(a, n) + margin))`` over the anchors of the batch.

    Args:
        distance_metric: ``"euclidean"`` (default), ``"squared_euclidean"`` or ``"cosine"``.
        margin: the hinge's margin.
    """

    def forward(self, embeddings: list[Tensor], labels: Tensor | None = None, text_ids: Any = None) -> Tensor:
        """Scalar loss from one ``[batch, dim]`` column and ``[batch]`` class labels."""
        hardest_positive, hardest_negative = _hardest(*self._inputs(embeddings, labels))
        return F.relu(hardest_positive - hardest_negative + self.margin).mean()


class BatchHardSoftMarginTripletLoss(_BatchTripletLoss):
    """``mean(softplus(max_p d(a, p) - min_n d(a, n)))``: batch-hard without a margin to tune.

    Args:
        distance_metric: ``"euclidean"`` (default), ``"squared_euclidean"`` or ``"cosine"``.
    """

    def __init__(self, distance_metric: str = "euclidean") -> None:
        super().__init__(distance_metric, None)

    def forward(self, embeddings: list[Tensor], labels: Tensor | None = None, text_ids: Any = None) -> Tensor:
        """Scalar loss from one ``[batch, dim]`` column and ``[batch]`` class labels."""
        hardest_positive, hardest_negative = _hardest(*self._inputs(embeddings, labels))
        return F.softplus(hardest_positive - hardest_negative).mean()


class BatchSemiHardTripletLoss(_BatchTripletLoss):
    """Per positive pair (a, p): ``relu(d(a, p) - d(a, n*) + margin)``, ``n*`` the closest negative with
    ``d(a, n) > d(a, p)`` (the farthest negative when none is), summed and divided by the number of positive pairs.

    Args:
        distance_metric: ``"euclidean"`` (default), ``"squared_euclidean"`` or ``"cosine"``.
        margin: the hinge's margin.
    """

    def forward(self, embeddings: list[Tensor], labels: Tensor | None = None, text_ids: Any = None) -> Tensor:
        """Scalar loss from one ``[batch, dim]`` column and ``[batch]`` class labels."""
        distances, same, positive_pair = self._inputs(embeddings, labels)
        batch = distances.shape[0]
        # Each row's negative distances in increasing order (+inf for same-label columns): the first one above
        # d(a, j) is found by binary search, without a [b, b, b] tensor.
        sorted_negatives = distances.masked_fill(same, torch.inf).sort(dim=1, stable=True).values
        position = torch.searchsorted(
            sorted_negatives.detach().contiguous(), distances.detach().contiguous(), right=True
        )
        above = sorted_negatives.gather(1, position.clamp(max=batch - 1))  # [b, b]; +inf when there is none
        row_min = distances.min(dim=1, keepdim=True).values
        farthest = ((distances - row_min) * ~same).max(dim=1, keepdim=True).values + row_min  # [b, 1]
        semi_hard = torch.where(torch.isfinite(above), above, farthest)
        losses = F.relu(distances - semi_hard + self.margin) * positive_pair
        return losses.sum() / positive_pair.sum().clamp(min=1e-16)


class BatchAllTripletLoss(_BatchTripletLoss):
    """``relu(d(a, p) - d(a, n) + margin)`` over every (anchor, positive, negative) of the batch, summed and divided
    by the number of triplets with a loss above ``1e-16``.

    Only the positive pairs' rows are built (``[pairs, b]``), not a ``[b, b, b]`` tensor.

    Args:
        distance_metric: ``"euclidean"`` (default), ``"squared_euclidean"`` or ``"cosine"``.
        margin: the hinge's margin.
    """

    def forward(self, embeddings: list[Tensor], labels: Tensor | None = None, text_ids: Any = None) -> Tensor:
        """Scalar loss from one ``[batch, dim]`` column and ``[batch]`` class labels."""
        distances, same, positive_pair = self._inputs(embeddings, labels)
        anchor, positive = positive_pair.nonzero(as_tuple=True)  # [pairs] each
        to_positive = distances[anchor, positive].unsqueeze(1)  # [pairs, 1]
        losses = F.relu(to_positive - distances[anchor] + self.margin) * ~same[anchor]  # [pairs, b]
        active = (losses > 1e-16).sum()
        return losses.sum() / (active + 1e-16)
