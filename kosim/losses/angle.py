"""AnglELoss: CoSENT with the angle similarity, which keeps a gradient where the cosine saturates (Li & Li 2023)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from kosim.losses.checks import check_columns
from kosim.losses.cosent import CoSENTLoss
from kosim.similarity import to_tensor

__all__ = ["AnglELoss", "pairwise_angle_sim"]


def pairwise_angle_sim(a: Tensor, b: Tensor) -> Tensor:
    """``|cos(a_i, b_i) + sin(a_i, b_i)|`` after L2 normalisation: ``[n, d] x [n, d] -> [n]``.

    Each embedding is read as ``d/2`` complex numbers (first half real parts, second half imaginary parts; an odd
    width is padded with a zero); the sine term is ``sum(im(a) * re(b) - re(a) * im(b))`` of the normalised rows.
    """
    a, b = to_tensor(a), to_tensor(b)
    if a.dtype in (torch.float16, torch.bfloat16):
        a, b = a.float(), b.float()
    if a.shape[1] % 2:
        a = torch.nn.functional.pad(a, (0, 1))
        b = torch.nn.functional.pad(b, (0, 1))
    a = torch.nn.functional.normalize(a, p=2, dim=1)
    b = torch.nn.functional.normalize(b, p=2, dim=1)
    a_re, a_im = a.chunk(2, dim=1)
    b_re, b_im = b.chunk(2, dim=1)
    cosines = (a * b).sum(dim=1)
    sines = (a_im * b_re - a_re * b_im).sum(dim=1)
    return (cosines + sines).abs()


class AnglELoss(CoSENTLoss):
    """:class:`~kosim.losses.CoSENTLoss` with :func:`pairwise_angle_sim` as the pair similarity.

    Two columns take ``[batch]`` scores (any scale: only their order matters). With ``k > 2`` columns (anchor,
    positive, negatives...) every (anchor, column j) becomes a pair: the positives keep the given labels (1 when
    there are none) and each negative gets ``1 - label``. Equals sentence-transformers' ``AnglELoss``.

    Args:
        scale: inverse temperature applied to the similarities (20 means temperature 0.05).
    """

    citation = """@misc{li2023angleoptimized,
  title         = {AnglE-optimized Text Embeddings},
  author        = {Xianming Li and Jing Li},
  year          = {2023},
  eprint        = {2309.12871},
  archivePrefix = {arXiv},
  primaryClass  = {cs.CL}
}"""

    def __init__(self, scale: float = 20.0) -> None:
        super().__init__(scale=scale)
        self.similarity = "angle"
        self.similarity_fct = pairwise_angle_sim

    def forward(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        text_ids: list[Tensor] | None = None,
    ) -> Tensor:
        """Scalar loss from two (or more) ``[batch, dim]`` columns and ``[batch]`` labels; ``text_ids`` is ignored."""
        columns = check_columns(embeddings, type(self).__name__, min_columns=2)
        if len(columns) == 2:
            return super().forward(columns, labels)
        anchors, n_other = columns[0], len(columns) - 1
        batch = anchors.shape[0]
        if labels is None:
            labels = anchors.new_ones(batch)
        elif labels.numel() != batch:
            raise ValueError(f"AnglELoss needs {batch} labels (one per row), got {labels.numel()}")
        labels = labels.reshape(-1).to(device=anchors.device, dtype=anchors.dtype)
        pairs = [anchors.repeat(n_other, 1), torch.cat(columns[1:], dim=0)]  # [batch * (k - 1), dim] each
        pair_labels = torch.cat([labels, (1 - labels).repeat(n_other - 1)])
        return super().forward(pairs, pair_labels)

    def config(self) -> dict[str, Any]:
        """Parameters for the model card (sentence-transformers' keys)."""
        return {"scale": self.scale, "similarity_fct": "pairwise_angle_sim"}
