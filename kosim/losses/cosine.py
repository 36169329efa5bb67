"""Cosine-similarity regression loss for scored sentence pairs (the original SBERT STS objective)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from kosim.losses.checks import check_columns, check_labels, upcast_half
from kosim.losses.citations import SBERT
from kosim.similarity import pairwise_cos_sim

__all__ = ["CosineSimilarityLoss"]


def _qualified_name(obj: object) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    module = cls.__module__
    if module in (None, "builtins"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


class CosineSimilarityLoss(nn.Module):
    """Regress the cosine similarity of each pair onto its gold score.

    Takes exactly two ``[batch, dim]`` columns ``u`` and ``v`` and float labels ``[batch]`` (typically in ``[0, 1]``),
    and returns ``loss_fct(cos(u_i, v_i), label_i)``. Matches sentence-transformers' ``CosineSimilarityLoss``.

    Args:
        loss_fct: regression loss between predicted cosines and labels; ``nn.MSELoss()`` when None.

    Attributes:
        label_range: ``(-1.0, 1.0)``, the values the regression target can take (a cosine). A label outside it can
            never be reached, e.g. KorSTS's raw 0-5 scores: scale them to ``[0, 1]`` first. The Trainer warns when a
            dataset's labels fall outside ``getattr(loss, "label_range", None)``.
    """

    label_range: tuple[float, float] = (-1.0, 1.0)

    citation = SBERT

    def __init__(self, loss_fct: nn.Module | None = None) -> None:
        super().__init__()
        self.loss_fct = loss_fct if loss_fct is not None else nn.MSELoss()

    def forward(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        text_ids: list[Tensor] | None = None,
    ) -> Tensor:
        """Scalar loss from two ``[batch, dim]`` columns and ``[batch]`` labels; ``text_ids`` is ignored."""
        name = type(self).__name__
        u, v = check_columns(embeddings, name, min_columns=2, max_columns=2)
        labels = check_labels(labels, u.shape[0], name)
        cosine = upcast_half(pairwise_cos_sim(u, v))  # [batch]
        return self.loss_fct(cosine, labels.to(device=cosine.device, dtype=cosine.dtype))

    def config(self) -> dict[str, Any]:
        """Parameters for the model card (the inner loss by its fully qualified class name)."""
        return {"loss_fct": _qualified_name(self.loss_fct)}
