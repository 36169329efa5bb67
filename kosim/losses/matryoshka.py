"""Matryoshka representation learning: apply a loss to several prefixes of the same embeddings."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from kosim.losses.checks import check_columns

__all__ = ["MatryoshkaLoss"]


class MatryoshkaLoss(nn.Module):
    """Weighted sum of an inner loss evaluated on the first ``d`` embedding dimensions, for each ``d`` in ``dims``.

    Training this way makes every prefix ``e[..., :d]`` a usable embedding on its own, so a model can later be
    truncated to any of the trained sizes. The wrapper only slices the embeddings it is given (no extra model
    forward), so it composes with gradient caching and cross-process gathering for free.

    Args:
        loss: the inner kosim loss (any module with ``forward(embeddings, labels, text_ids)``).
        dims: embedding sizes to train, positive ints; stored largest first (like sentence-transformers).
        weights: one weight per entry of ``dims`` (paired before sorting); all 1 when None.
        n_dims_per_step: if positive and smaller than ``len(dims)``, only that many randomly chosen sizes (Python's
            ``random`` module) contribute per call.
        normalize: L2-normalise each truncated embedding before the inner loss, as sentence-transformers'
            ``MatryoshkaLoss`` does. This changes nothing for cosine-based inner losses, but matters for dot-product
            or distance similarities. Set False to feed the raw prefixes ``e[..., :d]``.

    Attributes:
        label_range: the inner loss's ``label_range`` (e.g. ``(-1.0, 1.0)`` around a ``CosineSimilarityLoss``), or
            None when the inner loss puts no bound on its labels.
    """

    citation = """@inproceedings{kusupati2022matryoshka,
  title     = {Matryoshka Representation Learning},
  author    = {Aditya Kusupati and Gantavya Bhatt and Aniket Rege and Matthew Wallingford and Aditya Sinha and
               Vivek Ramanujan and William Howard-Snyder and Kaifeng Chen and Sham Kakade and Prateek Jain and
               Ali Farhadi},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2022},
  url       = {https://arxiv.org/abs/2205.13147}
}"""

    def __init__(
        self,
        loss: nn.Module,
        dims: Sequence[int],
        weights: Sequence[float] | None = None,
        n_dims_per_step: int = -1,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(loss, nn.Module):
            raise TypeError(f"MatryoshkaLoss wraps a loss module, got {type(loss).__name__}")
        if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence) or len(dims) == 0:
            raise ValueError(f"dims must be a non-empty list of positive ints, got {dims!r}")
        for d in dims:
            if isinstance(d, bool) or not isinstance(d, int) or d <= 0:
                raise ValueError(f"every Matryoshka dim must be a positive int, got {d!r} in dims={list(dims)}")
        if len(set(dims)) != len(dims):
            raise ValueError(f"Matryoshka dims must be distinct, got {list(dims)}")
        if weights is None:
            weights = [1.0] * len(dims)
        if len(weights) != len(dims):
            raise ValueError(f"got {len(weights)} weights for {len(dims)} dims; give one weight per dim")
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
                raise ValueError(f"Matryoshka weights must be finite numbers, got {w!r}")
        if isinstance(n_dims_per_step, bool) or not isinstance(n_dims_per_step, int) or n_dims_per_step == 0:
            raise ValueError(f"n_dims_per_step must be a positive int, or -1 for all dims, got {n_dims_per_step!r}")
        pairs = sorted(zip(dims, weights), key=lambda pair: pair[0], reverse=True)
        self.loss = loss
        self.dims: tuple[int, ...] = tuple(int(d) for d, _ in pairs)
        self.weights: tuple[float, ...] = tuple(float(w) for _, w in pairs)
        self.n_dims_per_step = n_dims_per_step
        self.normalize = bool(normalize)

    @property
    def label_range(self) -> tuple[float, float] | None:
        """The inner loss's ``label_range`` (the labels reach it unchanged), or None when it has none."""
        return getattr(self.loss, "label_range", None)

    def _truncate(self, embedding: Tensor, dim: int) -> Tensor:
        prefix = embedding[..., :dim]
        return F.normalize(prefix, p=2, dim=-1) if self.normalize else prefix

    def forward(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        text_ids: list[Tensor] | None = None,
    ) -> Tensor:
        """Scalar ``sum_d weight_d * loss([e[..., :d] for e in embeddings], labels, text_ids)``.

        Labels shaped like embeddings (``[batch, full_dim]`` or ``[batch, k, full_dim]``, e.g. distillation
        targets) are truncated along with them.
        """
        columns = check_columns(embeddings, type(self).__name__, min_columns=1)
        full_dim = columns[0].shape[-1]
        too_large = [d for d in self.dims if d > full_dim]
        if too_large:
            raise ValueError(
                f"Matryoshka dim {too_large[0]} is larger than the embedding dim {full_dim} (dims={list(self.dims)})"
            )
        indices = list(range(len(self.dims)))
        if 0 < self.n_dims_per_step < len(indices):
            indices = sorted(random.sample(indices, self.n_dims_per_step))

        embedding_like_labels = isinstance(labels, Tensor) and labels.dim() in (2, 3) and labels.shape[-1] == full_dim
        total: Tensor | float = 0.0
        truncated = columns
        for index in indices:  # largest dim first
            dim, weight = self.dims[index], self.weights[index]
            # Cut each size from the previous (already truncated) one: normalize(normalize(e)[:d]) equals
            # normalize(e[:d]) exactly in math and rounds the way sentence-transformers' cached truncation does.
            truncated = [self._truncate(column, dim) for column in truncated]
            dim_labels = labels[..., :dim] if embedding_like_labels else labels
            total = total + weight * self.loss(truncated, dim_labels, text_ids)
        return total  # type: ignore[return-value]

    def config(self) -> dict[str, Any]:
        """Parameters for the model card: the inner loss's class name, dims and weights (largest dim first)."""
        return {
            "loss": type(self.loss).__name__,
            "matryoshka_dims": list(self.dims),
            "matryoshka_weights": list(self.weights),
            "n_dims_per_step": self.n_dims_per_step,
        }
