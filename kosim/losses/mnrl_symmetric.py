"""``MultipleNegativesSymmetricRankingLoss``: the name sentence-transformers users know for symmetric MNRL."""

from __future__ import annotations

from kosim.losses.mnrl import MultipleNegativesRankingLoss

__all__ = ["MultipleNegativesSymmetricRankingLoss"]


class MultipleNegativesSymmetricRankingLoss(MultipleNegativesRankingLoss):
    """:class:`~kosim.losses.MultipleNegativesRankingLoss` with ``symmetric=True``: anchors rank the positives (and
    hard negatives), positives rank the anchors, and the two cross-entropies are averaged.

    Equals sentence-transformers' ``MultipleNegativesSymmetricRankingLoss`` (deprecated there in favour of
    ``MultipleNegativesRankingLoss(directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction")``).

    Args:
        scale: inverse temperature (20 means temperature 0.05).
        similarity: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"``.
        mask_false_negatives: as in :class:`~kosim.losses.MultipleNegativesRankingLoss` (needs ``text_ids``).
    """

    def __init__(self, scale: float = 20.0, similarity: str = "cosine", mask_false_negatives: bool = False) -> None:
        super().__init__(scale=scale, similarity=similarity, symmetric=True, mask_false_negatives=mask_false_negatives)
