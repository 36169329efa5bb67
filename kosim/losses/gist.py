"""GISTEmbed: in-batch negatives filtered by a frozen guide model's similarities (Solatorio, 2024).

The loss is a function of embeddings like every kosim loss: it never owns or runs the guide. The guide's embeddings
of the batch's texts arrive as ``guide_embeddings`` (one ``[batch, guide_dim]`` tensor per column). Because the
guide is frozen and runs without dropout, its embedding of a text never changes during training, so it is computed
once per distinct text before training (:func:`encode_guide_table`) and looked up per step by the batch's text ids
(:class:`GuideTable`, in :mod:`kosim.losses.guide`): no guide forward and no re-tokenizing inside the training
step, whatever the guide's tokenizer is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kosim.losses.mnrl import check_columns

__all__ = ["GISTEmbedLoss"]

MARGIN_STRATEGIES = ("absolute", "relative")


def _cosine_matrix(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of every row of ``a`` with every row of ``b``: ``[n, d] x [m, d] -> [n, m]``."""
    return F.normalize(a, p=2, dim=-1) @ F.normalize(b, p=2, dim=-1).T


class GISTEmbedLoss(nn.Module):
    """Cross-entropy over in-batch candidates, dropping those the guide rates at least as relevant as the positive.

    Column 0 holds anchors, column 1 their positives, further columns hard negatives (one column gives
    sentence-transformers' ``GISTEmbedLoss`` triplets; several match its ``CachedGISTEmbedLoss``). Anchor ``i`` is
    scored (cosine / ``temperature``) against every positive, every anchor (``contrast_anchors``), and every hard
    negative of the batch; positive ``i`` is also contrasted against every positive (``contrast_positives``), in the
    same softmax row, whose target is positive ``i``. A candidate is dropped (logit ``-inf``) when the guide's
    similarity of that pair exceeds the guide's anchor-positive similarity ``g_i`` minus the margin:

    - ``"absolute"``: dropped when ``guide_sim > g_i - margin``;
    - ``"relative"``: dropped when ``guide_sim > g_i - |g_i| * margin``.

    The true positive itself is never dropped. With ``margin = 0`` this removes exactly the negatives the guide finds
    more similar to the anchor than its positive (likely false negatives), and the self-pairs on the anchor-anchor and
    positive-positive diagonals. Values and gradients equal sentence-transformers' on the same embeddings.

    Multi-process training: kosim gathers every column (and the text ids the guide table is indexed by) before the
    loss, so a gathered batch gives the single-process loss of the combined batch. sentence-transformers'
    ``gather_across_devices`` instead scores only local anchors (anchor-anchor pairs stay local), so its
    multi-device numbers differ from kosim's by design; single-process numbers are equal.

    Args:
        temperature: divides the cosine similarities (0.01, sentence-transformers' default, is scale 100).
        margin_strategy: ``"absolute"`` or ``"relative"``, see above.
        margin: how far below the positive's guide similarity a candidate must stay to count as a negative.
        contrast_anchors: include anchor-anchor pairs as negatives (the paper's default).
        contrast_positives: include positive-positive pairs as negatives (the paper's default; off can help
            retrieval).
    """

    citation = """@misc{solatorio2024gistembed,
  title         = {GISTEmbed: Guided In-sample Selection of Training Negatives for Text Embedding Fine-tuning},
  author        = {Aivin V. Solatorio},
  year          = {2024},
  eprint        = {2402.16829},
  archivePrefix = {arXiv},
  primaryClass  = {cs.LG}
}"""
    table_role = "guide"  # a GuideTable bound to it supplies guide_embeddings (see GuidedLoss)

    def __init__(
        self,
        temperature: float = 0.01,
        margin_strategy: str = "absolute",
        margin: float = 0.0,
        contrast_anchors: bool = True,
        contrast_positives: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"temperature must be a positive number, got {temperature!r}")
        if margin_strategy not in MARGIN_STRATEGIES:
            raise ValueError(f"margin_strategy must be one of {list(MARGIN_STRATEGIES)}, got {margin_strategy!r}")
        if (
            isinstance(margin, bool)
            or not isinstance(margin, (int, float))
            or not float("-inf") < margin < float("inf")
        ):
            raise ValueError(f"margin must be a finite number, got {margin!r}")
        self.temperature = float(temperature)
        self.margin_strategy = margin_strategy
        self.margin = float(margin)
        self.contrast_anchors = bool(contrast_anchors)
        self.contrast_positives = bool(contrast_positives)

    def forward(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        text_ids: list[Tensor] | None = None,
        guide_embeddings: list[Tensor] | None = None,
    ) -> Tensor:
        """Scalar loss from ``k >= 2`` columns of ``[batch, dim]`` embeddings and the guide's ``[batch, guide_dim]``
        embeddings of the same texts (one per column, no grad needed); ``labels`` and ``text_ids`` are ignored."""
        name = type(self).__name__
        columns = check_columns(embeddings, name, min_columns=2)
        guides = _check_guide(guide_embeddings, columns, name)
        anchors, positives, negatives = columns[0], columns[1], columns[2:]
        guide_anchors, guide_positives, guide_negatives = guides[0], guides[1], guides[2:]
        batch = anchors.shape[0]

        guide_ap = _cosine_matrix(guide_anchors, guide_positives)  # [batch, batch]
        threshold = guide_ap.diagonal().unsqueeze(1)  # [batch, 1] the guide's anchor-positive similarity
        if self.margin_strategy == "absolute":
            threshold = threshold - self.margin
        else:
            threshold = threshold - threshold.abs() * self.margin
        own = torch.eye(batch, dtype=torch.bool, device=anchors.device)  # the true positives, never dropped

        blocks = [_cosine_matrix(anchors, positives).masked_fill((guide_ap > threshold) & ~own, float("-inf"))]
        pairs = []
        if self.contrast_anchors:
            pairs.append((anchors, anchors, guide_anchors, guide_anchors))
        if self.contrast_positives:
            pairs.append((positives, positives, guide_positives, guide_positives))
        pairs += [(anchors, n, guide_anchors, g) for n, g in zip(negatives, guide_negatives)]
        for left, right, guide_left, guide_right in pairs:
            drop = _cosine_matrix(guide_left, guide_right) > threshold  # [batch, batch]
            blocks.append(_cosine_matrix(left, right).masked_fill(drop, float("-inf")))
        logits = torch.cat(blocks, dim=1)  # [batch, batch * n_blocks]
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()  # the softmax needs more precision than half types give
        logits = logits / self.temperature
        target = torch.arange(batch, device=anchors.device)
        return F.cross_entropy(logits, target)

    def config(self) -> dict[str, Any]:
        """Parameters for the model card, with sentence-transformers' names."""
        return {
            "temperature": self.temperature,
            "margin_strategy": self.margin_strategy,
            "margin": self.margin,
            "contrast_anchors": self.contrast_anchors,
            "contrast_positives": self.contrast_positives,
        }

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value!r}" for key, value in self.config().items())


def _check_guide(guide_embeddings: Sequence[Tensor] | None, columns: list[Tensor], name: str) -> list[Tensor]:
    """The guide's columns, detached, on the student's device: one ``[batch, guide_dim]`` per student column."""
    if guide_embeddings is None:
        raise ValueError(
            f"{name} needs guide_embeddings: the guide model's [batch, guide_dim] embedding of each column's texts "
            "(build a GuideTable once with encode_guide_table and look the batch up by its text_ids)"
        )
    if isinstance(guide_embeddings, Tensor) or not isinstance(guide_embeddings, Sequence):
        raise TypeError(f"{name}: guide_embeddings must be a list of tensors, got {type(guide_embeddings).__name__}")
    if len(guide_embeddings) != len(columns):
        raise ValueError(
            f"{name}: got {len(guide_embeddings)} guide embedding columns for {len(columns)} embedding columns"
        )
    guides = check_columns(guide_embeddings, f"{name} guide", min_columns=len(columns))
    if guides[0].shape[0] != columns[0].shape[0]:
        raise ValueError(
            f"{name}: guide embeddings have batch size {guides[0].shape[0]}, embeddings {columns[0].shape[0]}"
        )
    return [g.detach().to(columns[0].device) for g in guides]
