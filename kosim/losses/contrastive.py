"""Contrastive losses for labelled pairs: pull positives (label 1) together, push negatives (label 0) past a margin.

``ContrastiveLoss`` (Hadsell et al. 2006) uses every pair; ``OnlineContrastiveLoss`` only the hard ones: positives
farther apart than the closest negative, negatives closer than the farthest positive.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kosim.losses.checks import check_columns, check_labels, upcast_half
from kosim.losses.triplet import resolve_distance

__all__ = ["SIAMESE_DISTANCES", "ContrastiveLoss", "OnlineContrastiveLoss"]

# sentence-transformers' SiameseDistanceMetric members by kosim's lowercase names (COSINE_DISTANCE is "cosine").
SIAMESE_DISTANCES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "euclidean": lambda a, b: F.pairwise_distance(a, b, p=2),
    "manhattan": lambda a, b: F.pairwise_distance(a, b, p=1),
    "cosine": lambda a, b: 1 - F.cosine_similarity(a, b),
}
_ENUM_NAMES = {"euclidean": "EUCLIDEAN", "manhattan": "MANHATTAN", "cosine": "COSINE_DISTANCE"}


def _check_margin(margin: float) -> float:
    if isinstance(margin, bool) or not isinstance(margin, (int, float)):
        raise TypeError(f"margin must be a number, got {margin!r}")
    return float(margin)


class _PairLoss(nn.Module):
    """Shared by both contrastive losses: the distance, the margin, the inputs and the non-binary label warning."""

    binary_warning = ""

    def __init__(self, distance_metric: str, margin: float) -> None:
        super().__init__()
        self.distance_metric = resolve_distance(distance_metric, SIAMESE_DISTANCES, "distance_metric")
        self.distance_fct = SIAMESE_DISTANCES[self.distance_metric]
        self.margin = _check_margin(margin)
        self._checked_labels = False

    def _distances_and_labels(self, embeddings: list[Tensor], labels: Tensor | None) -> tuple[Tensor, Tensor]:
        name = type(self).__name__
        a, b = check_columns(embeddings, name, min_columns=2, max_columns=2)
        labels = check_labels(labels, a.shape[0], name).to(a.device)
        if not self._checked_labels:  # one host sync, on the first batch only
            self._checked_labels = True
            if bool(((labels != 0) & (labels != 1)).any()):
                warnings.warn(f"{name} expects binary labels (0 or 1); {self.binary_warning}", stacklevel=3)
        distances = upcast_half(self.distance_fct(a, b))  # [batch]
        return distances, labels.to(distances.dtype)

    def config(self) -> dict[str, Any]:
        """Parameters for the model card, with sentence-transformers' enum name for the distance."""
        return {"distance_metric": f"SiameseDistanceMetric.{_ENUM_NAMES[self.distance_metric]}", "margin": self.margin}


class ContrastiveLoss(_PairLoss):
    """``0.5 * (y * d^2 + (1 - y) * relu(margin - d)^2)`` per pair, averaged (or summed), for labels ``y`` in {0, 1}.

    Takes exactly two ``[batch, dim]`` columns plus ``[batch]`` labels and equals sentence-transformers'
    ``ContrastiveLoss``. A label other than 0 or 1 is used as a weight (with a warning on the first batch).

    Args:
        distance_metric: ``"cosine"`` (``1 - cos``, the default), ``"euclidean"`` or ``"manhattan"``.
        margin: negatives closer than this are pushed apart.
        size_average: mean over the batch (True) or sum.
    """

    binary_warning = "other labels weight the positive term, and 1 - label the negative term"

    citation = """@inproceedings{hadsell2006dimensionality,
  author    = {Hadsell, R. and Chopra, S. and LeCun, Y.},
  booktitle = {2006 IEEE Computer Society Conference on Computer Vision and Pattern Recognition (CVPR'06)},
  title     = {Dimensionality Reduction by Learning an Invariant Mapping},
  year      = {2006},
  volume    = {2},
  pages     = {1735-1742},
  doi       = {10.1109/CVPR.2006.100}
}"""

    def __init__(self, distance_metric: str = "cosine", margin: float = 0.5, size_average: bool = True) -> None:
        super().__init__(distance_metric, margin)
        self.size_average = bool(size_average)

    def forward(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        text_ids: list[Tensor] | None = None,
    ) -> Tensor:
        """Scalar loss from two ``[batch, dim]`` columns and ``[batch]`` labels; ``text_ids`` is ignored."""
        distances, labels = self._distances_and_labels(embeddings, labels)
        losses = 0.5 * (labels * distances.pow(2) + (1 - labels) * F.relu(self.margin - distances).pow(2))
        return losses.mean() if self.size_average else losses.sum()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "size_average": self.size_average}


class OnlineContrastiveLoss(_PairLoss):
    """Contrastive loss summed over the hard pairs of the batch only.

    A positive pair (label 1) counts when its distance exceeds the smallest negative distance of the batch (the mean
    positive distance when there is no negative); a negative pair (label 0) when its distance is below the largest
    positive distance (the mean negative distance when there is no positive). The loss is
    ``sum(d_pos^2) + sum(relu(margin - d_neg)^2)`` over those, like sentence-transformers' ``OnlineContrastiveLoss``;
    pairs with other labels are ignored (with a warning on the first batch). Computed with masks, without a host
    sync.

    Args:
        distance_metric: ``"cosine"`` (``1 - cos``, the default), ``"euclidean"`` or ``"manhattan"``.
        margin: negatives closer than this are pushed apart.
    """

    binary_warning = "pairs with any other label are ignored"

    def __init__(self, distance_metric: str = "cosine", margin: float = 0.5) -> None:
        super().__init__(distance_metric, margin)

    def forward(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        text_ids: list[Tensor] | None = None,
    ) -> Tensor:
        """Scalar loss from two ``[batch, dim]`` columns and ``[batch]`` labels; ``text_ids`` is ignored."""
        distances, labels = self._distances_and_labels(embeddings, labels)
        is_pos, is_neg = labels == 1, labels == 0
        d = distances.detach()
        has_pos, has_neg = is_pos.any(), is_neg.any()
        pos_max = d.masked_fill(~is_pos, -torch.inf).max()
        neg_min = d.masked_fill(~is_neg, torch.inf).min()
        pos_mean = (d * is_pos).sum() / is_pos.sum()  # NaN without positives: then unused
        neg_mean = (d * is_neg).sum() / is_neg.sum()
        hard_neg = is_neg & (d < torch.where(has_pos, pos_max, neg_mean))
        hard_pos = is_pos & (d > torch.where(has_neg, neg_min, pos_mean))
        positive_loss = (distances.pow(2) * hard_pos).sum()
        negative_loss = (F.relu(self.margin - distances).pow(2) * hard_neg).sum()
        return positive_loss + negative_loss
