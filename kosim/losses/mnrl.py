"""Multiple negatives ranking loss (in-batch negatives / InfoNCE) and its false-negative mask.

Like every kosim loss it is a function of embeddings, never of a model: that keeps it composable with gradient
caching, Matryoshka truncation and cross-process gathering, which all just hand it different embedding tensors.
The input checks it shares with the other losses live in ``kosim.losses.checks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from kosim.losses.checks import check_columns, check_labels, check_scale, upcast_half
from kosim.similarity import SIMILARITY_FUNCTIONS, resolve_similarity

# check_columns / check_labels stay importable from here (their home before kosim.losses.checks).
__all__ = [
    "MultipleNegativesRankingLoss",
    "check_columns",
    "check_labels",
    "false_negative_mask",
]


def false_negative_mask(anchor_positive_ids: Tensor, candidate_ids: Tensor, positive_index: Tensor) -> Tensor:
    """Boolean ``[b, N]`` mask of candidates that repeat an anchor's own positive text.

    Args:
        anchor_positive_ids: ``[b]`` text ids of the positives that belong to the ``b`` anchors being scored.
        candidate_ids: ``[N]`` text ids of all candidates (positives then hard negatives, possibly gathered
            from every process).
        positive_index: ``[b]`` position of each anchor's true positive inside the ``N`` candidates (``arange(b)``
            for a local batch, ``rank * b + arange(b)`` for a cross-process gather).

    Returns:
        ``mask[i, j]`` is True when candidate ``j`` has the same text as anchor ``i``'s positive but is not that
        positive itself; such a candidate is not a real negative and should be excluded from the softmax.
    """
    same_text = candidate_ids.unsqueeze(0) == anchor_positive_ids.unsqueeze(1)
    columns = torch.arange(candidate_ids.shape[0], device=candidate_ids.device)
    is_true_positive = columns.unsqueeze(0) == positive_index.to(candidate_ids.device).unsqueeze(1)
    return same_text & ~is_true_positive


def _check_text_ids(text_ids: Sequence[Tensor] | None, n_columns: int, batch_size: int, device: torch.device) -> list:
    if text_ids is None:
        raise ValueError(
            "MultipleNegativesRankingLoss(mask_false_negatives=True) needs text_ids: one int64 [batch] tensor per "
            "column identifying each text, but got text_ids=None"
        )
    ids = list(text_ids)
    if len(ids) != n_columns:
        raise ValueError(f"text_ids has {len(ids)} entries but there are {n_columns} embedding columns")
    out = []
    for i, column_ids in enumerate(ids):
        column_ids = torch.as_tensor(column_ids)
        if column_ids.dim() != 1 or column_ids.shape[0] != batch_size:
            raise ValueError(f"text_ids[{i}] must have shape [{batch_size}], got {tuple(column_ids.shape)}")
        if column_ids.is_floating_point() or column_ids.dtype == torch.bool:
            raise TypeError(f"text_ids[{i}] must be an integer tensor, got {column_ids.dtype}")
        out.append(column_ids.to(device=device, dtype=torch.long))
    return out


class MultipleNegativesRankingLoss(nn.Module):
    """Cross-entropy over in-batch candidates: each anchor must pick its own positive.

    Column 0 holds anchors, column 1 their positives, and any further columns hard negatives. Anchor ``i`` is scored
    against every positive and every hard negative of the batch (``B * (k - 1)`` candidates for ``k`` columns); the
    scaled similarities are logits and the target is candidate ``i``. With the default arguments this gives the same
    value and gradients as sentence-transformers' ``MultipleNegativesRankingLoss`` defaults (a single "query to
    document" direction with one joint softmax).

    Args:
        scale: multiplies the similarities before the softmax (the inverse temperature; 20 means temperature 0.05).
        similarity: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"`` (aliases such as ``"cos_sim"`` work).
        symmetric: also let every positive rank all anchors of the batch and average the two cross-entropies (the
            positives-to-anchors direction ignores hard negatives), like sentence-transformers'
            ``MultipleNegativesSymmetricRankingLoss``.
        mask_false_negatives: drop (logit ``-inf``) candidates whose text id equals the anchor's own positive's
            text id, other than that positive itself; in the symmetric direction, drop anchors whose text id equals
            the positive's own anchor's. Needs ``text_ids`` in :meth:`forward`.
    """

    citation = """@misc{henderson2017efficient,
  title         = {Efficient Natural Language Response Suggestion for Smart Reply},
  author        = {Matthew Henderson and Rami Al-Rfou and Brian Strope and Yun-Hsuan Sung and
                   L{\\'a}szl{\\'o} Luk{\\'a}cs and Ruiqi Guo and Sanjiv Kumar and Balint Miklos and Ray Kurzweil},
  year          = {2017},
  eprint        = {1705.00652},
  archivePrefix = {arXiv},
  primaryClass  = {cs.CL}
}"""

    def __init__(
        self,
        scale: float = 20.0,
        similarity: str = "cosine",
        symmetric: bool = False,
        mask_false_negatives: bool = False,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        self.similarity = resolve_similarity(similarity)
        self.similarity_fct = SIMILARITY_FUNCTIONS[self.similarity]
        self.symmetric = bool(symmetric)
        self.mask_false_negatives = bool(mask_false_negatives)

    def forward(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        text_ids: list[Tensor] | None = None,
    ) -> Tensor:
        """Scalar loss from ``k >= 2`` columns of ``[batch, dim]`` embeddings; ``labels`` is ignored.

        ``text_ids`` (one int64 ``[batch]`` tensor per column, equal id = equal text) is only read when
        ``mask_false_negatives`` is on.
        """
        name = type(self).__name__
        columns = check_columns(embeddings, name, min_columns=2)
        anchors = columns[0]
        batch = anchors.shape[0]
        candidates = torch.cat(columns[1:], dim=0)  # [batch * (k - 1), dim]
        similarities = upcast_half(self.similarity_fct(anchors, candidates))  # [batch, batch * (k - 1)]
        logits = similarities * self.scale
        target = torch.arange(batch, device=anchors.device)

        backward_logits = None
        if self.symmetric:
            # Row i: positive i scored against every anchor of the batch.
            backward_logits = logits[:, :batch].T

        if self.mask_false_negatives:
            ids = _check_text_ids(text_ids, len(columns), batch, anchors.device)
            candidate_ids = torch.cat(ids[1:], dim=0)
            mask = false_negative_mask(ids[1], candidate_ids, target)
            logits = logits.masked_fill(mask, float("-inf"))
            if backward_logits is not None:
                backward_mask = false_negative_mask(ids[0], ids[0], target)
                backward_logits = backward_logits.masked_fill(backward_mask, float("-inf"))

        # Cross-entropy with target i for row i, written as log-partition minus the positive logit.
        positive = logits[target, target]
        log_partition = torch.logsumexp(logits, dim=1)
        if backward_logits is not None:
            log_partition = (log_partition + torch.logsumexp(backward_logits, dim=1)) / 2
        return (log_partition - positive).mean()

    def config(self) -> dict[str, Any]:
        """Parameters for the model card, with sentence-transformers' names for the similarity function."""
        return {
            "scale": self.scale,
            "similarity_fct": self.similarity_fct.__name__,
            "symmetric": self.symmetric,
            "mask_false_negatives": self.mask_false_negatives,
        }

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value!r}" for key, value in self.config().items())
