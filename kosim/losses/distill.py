"""Distillation losses: a student learns a teacher's score margins (MarginMSE) or its embeddings (MSE).

The teacher never runs inside the loss: its scores or embeddings are computed beforehand (e.g. the scores
``kosim mine`` writes with ``output_scores``, read back as ``[rows, 1 + negatives]`` labels) and arrive as
``labels``; a teacher model given to the Trainer is encoded once per distinct text into a table (the mechanism of
GIST's guide, :class:`~kosim.losses.gist.GuideTable`) that supplies MSELoss's labels.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kosim.losses.mnrl import check_columns
from kosim.similarity import PAIRWISE_FUNCTIONS, resolve_similarity

__all__ = ["MSELoss", "MarginMSELoss"]


def _check_finite(labels: Tensor, name: str) -> None:
    finite = torch.isfinite(labels)
    if not bool(finite.all()):
        bad = tuple(int(i) for i in (~finite).nonzero()[0])
        raise ValueError(f"{name}: label at index {bad} is not finite ({labels[bad].item()})")


def _as_float_tensor(labels: Any, name: str) -> Tensor:
    if labels is None:
        raise ValueError(f"{name} needs labels (the teacher's scores or embeddings), got None")
    labels = labels if isinstance(labels, Tensor) else torch.as_tensor(labels)
    return labels if labels.is_floating_point() else labels.float()


class MarginMSELoss(nn.Module):
    """Regress the student's margins ``sim(q, pos) - sim(q, neg_i)`` onto the teacher's (Hofstätter et al., 2021).

    Columns: query, positive, then ``n >= 1`` negatives. ``labels`` is either the teacher's margins, ``[batch]``
    (one negative) or ``[batch, n]``, or the teacher's raw scores ``[batch, n + 1]`` (positive first, as mining with
    ``output_scores`` writes them), turned into margins here. The loss is the mean squared error over all
    ``batch * n`` margins; teacher labels carry no gradient. Matches sentence-transformers' ``MarginMSELoss``.

    Args:
        similarity: the student's pairwise score, ``"dot"`` by default as in sentence-transformers (``"cosine"``,
            ``"euclidean"``, ``"manhattan"`` and aliases work); it should be the score the teacher labels use.
    """

    citation = """@misc{hofstatter2021improving,
  title         = {Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation},
  author        = {Sebastian Hofst{\\"a}tter and Sophia Althammer and Michael Schr{\\"o}der and Mete Sertkan and
                   Allan Hanbury},
  year          = {2021},
  eprint        = {2010.02666},
  archivePrefix = {arXiv},
  primaryClass  = {cs.IR}
}"""

    def __init__(self, similarity: str = "dot") -> None:
        super().__init__()
        self.similarity = resolve_similarity(similarity)
        self.similarity_fct = PAIRWISE_FUNCTIONS[self.similarity]

    def teacher_margins(self, labels: Any, batch: int, n_negatives: int) -> Tensor:
        """The teacher's margins ``[batch, n_negatives]`` from any accepted label layout."""
        name = type(self).__name__
        labels = _as_float_tensor(labels, name).detach()
        if labels.shape == (batch, n_negatives + 1):  # raw scores: positive, then each negative
            labels = labels[:, :1] - labels[:, 1:]
        elif labels.shape == (batch,):
            labels = labels.unsqueeze(1)
        if labels.shape != (batch, n_negatives):
            raise ValueError(
                f"{name} with {n_negatives} negative column(s) needs labels of shape [{batch}, {n_negatives}] "
                f"(teacher margins score(q, pos) - score(q, neg_i)) or [{batch}, {n_negatives + 1}] (teacher scores, "
                f"positive first){' or [' + str(batch) + ']' if n_negatives == 1 else ''}, got {tuple(labels.shape)}"
            )
        _check_finite(labels, name)
        return labels

    def forward(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        text_ids: list[Tensor] | None = None,
    ) -> Tensor:
        """Scalar loss from ``2 + n`` columns of ``[batch, dim]`` embeddings; ``text_ids`` is ignored."""
        columns = check_columns(embeddings, type(self).__name__, min_columns=3)
        query, positive, negatives = columns[0], columns[1], columns[2:]
        target = self.teacher_margins(labels, query.shape[0], len(negatives))
        positive_score = self.similarity_fct(query, positive)  # [batch]
        margins = torch.stack([positive_score - self.similarity_fct(query, n) for n in negatives], dim=1)
        if margins.dtype in (torch.float16, torch.bfloat16):
            margins = margins.float()
        return F.mse_loss(margins, target.to(device=margins.device, dtype=margins.dtype))

    def config(self) -> dict[str, Any]:
        """Parameters for the model card, with sentence-transformers' names for the similarity function."""
        return {"similarity_fct": self.similarity_fct.__name__}

    def extra_repr(self) -> str:
        return f"similarity={self.similarity!r}"


class MSELoss(nn.Module):
    """Mean squared error between the student's embedding of each column and the teacher's (Reimers & Gurevych, 2020).

    ``labels`` is the teacher's embeddings: ``[batch, teacher_dim]``, the target of every column (e.g. an English
    sentence's teacher embedding for both its English and its Korean column, to make a Korean student
    multilingual), or ``[batch, columns, teacher_dim]``, one target per column. In kosim's Trainer the labels can
    come from the dataset (a ``[rows, teacher_dim]`` vector label per row), or from a teacher model
    (``Trainer(..., teacher=model)``, ``teacher = "path"`` in a run config): it encodes each distinct text of the
    first column once at set-up, and its embedding of a row's first text is the target of every column. The loss is the mean over columns of
    each column's element-wise MSE; teacher labels carry no gradient. Matches sentence-transformers' ``MSELoss``.

    Args:
        projection_dim: if set, a trained ``Linear(embedding_dim, projection_dim)`` maps the student's embeddings
            into a teacher space of another width before the MSE. Its weights belong to the loss, so they must be
            optimised with the model (``loss.parameters()``) and are not saved with it.
        embedding_dim: the student's embedding width; required with ``projection_dim``.
    """

    citation = """@inproceedings{reimers2020multilingual,
  title     = {Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation},
  author    = {Nils Reimers and Iryna Gurevych},
  booktitle = {Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing},
  year      = {2020},
  publisher = {Association for Computational Linguistics},
  url       = {https://arxiv.org/abs/2004.09813}
}"""
    table_role = "teacher"  # Trainer(teacher=...): a table of the teacher's embeddings gives the labels (GuidedLoss)

    def __init__(self, projection_dim: int | None = None, embedding_dim: int | None = None) -> None:
        super().__init__()
        self.projection_dim = projection_dim
        self.projection: nn.Linear | None = None
        if projection_dim is not None:
            for arg, value in (("projection_dim", projection_dim), ("embedding_dim", embedding_dim)):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"MSELoss with a projection needs {arg} as a positive int, got {value!r}")
            self.projection = nn.Linear(embedding_dim, projection_dim)
        elif embedding_dim is not None:
            raise ValueError("MSELoss: embedding_dim is only used with projection_dim; set both or neither")

    def teacher_columns(self, labels: Any, columns: list[Tensor]) -> list[Tensor]:
        """One ``[batch, teacher_dim]`` target per column from a 2-D (shared) or 3-D (per-column) label tensor."""
        name = type(self).__name__
        labels = _as_float_tensor(labels, name).detach()
        batch, n = columns[0].shape[0], len(columns)
        width = self.projection_dim if self.projection is not None else columns[0].shape[1]
        if labels.dim() == 2:
            targets = [labels] * n
        elif labels.dim() == 3 and labels.shape[1] == n:
            targets = list(labels.unbind(1))
        else:
            raise ValueError(
                f"{name} needs the teacher's embeddings as labels, [{batch}, {width}] (shared by all {n} column(s)) "
                f"or [{batch}, {n}, {width}] (one per column), got {tuple(labels.shape)}"
            )
        if tuple(targets[0].shape) != (batch, width):
            raise ValueError(
                f"{name}: teacher embeddings have shape {tuple(targets[0].shape)} per column, but the student gives "
                f"[{batch}, {width}]"
                + ("" if self.projection is not None else " (set projection_dim for a teacher of another width)")
            )
        _check_finite(labels, name)
        return targets

    def forward(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        text_ids: list[Tensor] | None = None,
    ) -> Tensor:
        """Scalar loss from ``k >= 1`` columns of ``[batch, dim]`` embeddings; ``text_ids`` is ignored."""
        columns = check_columns(embeddings, type(self).__name__, min_columns=1)
        if self.projection is not None:
            if columns[0].shape[1] != self.projection.in_features:
                raise ValueError(
                    f"MSELoss: the projection takes {self.projection.in_features}-dim embeddings, got "
                    f"{columns[0].shape[1]}"
                )
            columns = [self.projection(c) for c in columns]
        targets = self.teacher_columns(labels, columns)
        per_column = [F.mse_loss(c, t.to(device=c.device, dtype=c.dtype)) for c, t in zip(columns, targets)]
        return torch.stack(per_column).mean()

    def config(self) -> dict[str, Any]:
        """Parameters for the model card, with sentence-transformers' names."""
        return {"projection_dim": self.projection_dim}
