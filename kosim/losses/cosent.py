"""CoSENT: a ranking loss over all pairs of scored sentence pairs in the batch."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from kosim.losses.checks import check_columns, check_labels, check_scale, upcast_half
from kosim.similarity import PAIRWISE_FUNCTIONS, resolve_similarity

__all__ = ["CoSENTLoss"]


class CoSENTLoss(nn.Module):
    """Penalise every pair of examples whose similarities are ordered against their gold scores.

    With ``s_i = scale * sim(u_i, v_i)`` the loss is ``log(1 + sum over (i, j) with label_i < label_j of
    exp(s_i - s_j))``: only the ordering of the labels matters, not their values. Takes exactly two
    ``[batch, dim]`` columns plus ``[batch]`` labels and matches sentence-transformers' ``CoSENTLoss``.

    The pair matrix is ``[batch, batch]``, which is negligible at the batch sizes STS training uses. Because only
    the order counts, labels on any finite scale work (raw 0-5 KorSTS scores included), so the loss has no
    ``label_range``.

    Args:
        scale: inverse temperature applied to the similarities (20 means temperature 0.05).
        similarity: pairwise similarity, ``"cosine"`` by default (``"dot"``, ``"euclidean"``, ``"manhattan"``).
    """

    citation = """@online{su2022cosent,
  title   = {{CoSENT}: A more efficient sentence vector scheme than {Sentence-BERT}},
  author  = {Jianlin Su},
  year    = {2022},
  month   = {January},
  url     = {https://kexue.fm/archives/8847}
}"""

    def __init__(self, scale: float = 20.0, similarity: str = "cosine") -> None:
        super().__init__()
        self.scale = check_scale(scale)
        self.similarity = resolve_similarity(similarity)
        self.similarity_fct = PAIRWISE_FUNCTIONS[self.similarity]

    def forward(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        text_ids: list[Tensor] | None = None,
    ) -> Tensor:
        """Scalar loss from two ``[batch, dim]`` columns and ``[batch]`` labels; ``text_ids`` is ignored."""
        name = type(self).__name__
        u, v = check_columns(embeddings, name, min_columns=2, max_columns=2)
        labels = check_labels(labels, u.shape[0], name).to(u.device)
        scores = upcast_half(self.similarity_fct(u, v)) * self.scale  # [batch]
        # Pairs (i, j) with label_i < label_j contribute exp(s_i - s_j). Factor each row as
        # s_i + log(sum_j exp(-s_j)) over the j ranked above i; rows with no such j become -inf.
        ranked_above = labels.unsqueeze(1) < labels.unsqueeze(0)  # [batch, batch], [i, j]: label_i < label_j
        negated = (-scores).unsqueeze(0).expand(scores.shape[0], -1)
        row_terms = scores + torch.logsumexp(negated.masked_fill(~ranked_above, float("-inf")), dim=1)
        # The leading 0 is the "1 +" inside the log.
        return torch.logsumexp(torch.cat([row_terms.new_zeros(1), row_terms]), dim=0)

    def config(self) -> dict[str, Any]:
        """Parameters for the model card, with sentence-transformers' names for the similarity function."""
        return {"scale": self.scale, "similarity_fct": self.similarity_fct.__name__}
