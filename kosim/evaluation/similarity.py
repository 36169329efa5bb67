"""STS-style evaluation: correlate embedding similarities of sentence pairs with gold similarity scores."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from torch import Tensor

from kosim.similarity import PAIRWISE_FUNCTIONS, resolve_similarity

__all__ = ["ALL_SIMILARITIES", "EmbeddingSimilarityEvaluator", "encode_unique", "resolve_similarity_fns"]

# Report order, the same as sentence-transformers' list of names.
ALL_SIMILARITIES: tuple[str, ...] = ("cosine", "euclidean", "manhattan", "dot")


def resolve_similarity_fns(similarity_fns: Sequence[str] | str | None) -> list[str]:
    """Canonical, de-duplicated similarity names in the given order; all four when None."""
    if similarity_fns is None:
        return list(ALL_SIMILARITIES)
    if isinstance(similarity_fns, str):
        similarity_fns = [similarity_fns]
    names: list[str] = []
    for fn in similarity_fns:
        canonical = resolve_similarity(fn)
        if canonical not in names:
            names.append(canonical)
    if not names:
        raise ValueError("similarity_fns must name at least one similarity function")
    return names


def _to_float_tensor(embeddings: Any) -> Tensor:
    if isinstance(embeddings, Tensor):
        tensor = embeddings.detach().cpu()
    else:
        tensor = torch.as_tensor(np.asarray(embeddings))
    if not tensor.is_floating_point() or tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.float()
    return tensor


def encode_unique(
    model: Any,
    texts: list[str],
    batch_size: int,
    show_progress_bar: bool | None = None,
) -> tuple[list[str], Tensor]:
    """Encode each distinct text once with ``model.encode`` and return ``(unique_texts, embeddings [n_unique, dim])``.

    Evaluation sets repeat sentences a lot (KorSTS, NLI triplets), so encoding the union once saves time and makes a
    sentence's embedding identical wherever it appears. ``show_progress_bar`` is only forwarded when not None, so any
    object with ``encode(texts, batch_size=...)`` works as a model.
    """
    unique = list(dict.fromkeys(texts))
    kwargs: dict[str, Any] = {"batch_size": batch_size}
    if show_progress_bar is not None:
        kwargs["show_progress_bar"] = show_progress_bar
    embeddings = _to_float_tensor(model.encode(unique, **kwargs))
    if embeddings.dim() != 2 or embeddings.shape[0] != len(unique):
        raise ValueError(
            f"model.encode returned shape {tuple(embeddings.shape)} for {len(unique)} texts; "
            f"expected [{len(unique)}, dim]"
        )
    return unique, embeddings


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def _check_texts(texts: Sequence[str], what: str) -> list[str]:
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{what}[{i}] must be a str, got {type(text).__name__}")
    return texts


class EmbeddingSimilarityEvaluator:
    """Pearson and Spearman correlation between gold scores and embedding similarities of sentence pairs.

    Metric keys follow sentence-transformers 6.2: ``"{name}_pearson_cosine"``, ``"{name}_spearman_cosine"``, ...
    for each similarity, plus ``"{name}_pearson_max"`` / ``"{name}_spearman_max"`` when more than one similarity is
    computed; without a name the ``"{name}_"`` prefix is dropped. The numbers equal sentence-transformers'
    ``EmbeddingSimilarityEvaluator(similarity_fn_names=..., main_similarity="cosine")`` on the same embeddings.

    Args:
        sentences1, sentences2: the two sides of each pair (``n`` each).
        scores: ``n`` finite gold scores (any scale: only correlations are reported).
        batch_size: passed to ``model.encode``.
        name: dataset name used as key prefix, e.g. ``"sts-dev"``.
        similarity_fns: subset of ``"cosine"``, ``"euclidean"``, ``"manhattan"``, ``"dot"`` (aliases allowed);
            all four when None.
        show_progress_bar: forwarded to ``model.encode`` when not None.
        main_similarity: similarity whose Spearman correlation is the primary metric; ``"cosine"`` when it is
            computed, else the first of ``similarity_fns``.
    """

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        scores: Sequence[float],
        batch_size: int = 32,
        name: str = "",
        similarity_fns: Sequence[str] | None = None,
        show_progress_bar: bool | None = None,
        main_similarity: str | None = None,
    ) -> None:
        self.sentences1 = _check_texts(sentences1, "sentences1")
        self.sentences2 = _check_texts(sentences2, "sentences2")
        scores = [float(s) for s in scores]
        if not len(self.sentences1) == len(self.sentences2) == len(scores):
            raise ValueError(
                "sentences1, sentences2 and scores must have the same length, got "
                f"{len(self.sentences1)}, {len(self.sentences2)} and {len(scores)}"
            )
        if len(scores) < 2:
            raise ValueError(f"need at least 2 scored pairs to compute correlations, got {len(scores)}")
        for i, score in enumerate(scores):
            if not math.isfinite(score):
                raise ValueError(f"score at index {i} is not finite ({score})")
        self.scores = scores
        self.batch_size = _check_batch_size(batch_size)
        self.name = name
        self.similarity_fns = resolve_similarity_fns(similarity_fns)
        self.show_progress_bar = show_progress_bar
        if main_similarity is None:
            main = "cosine" if "cosine" in self.similarity_fns else self.similarity_fns[0]
        else:
            main = resolve_similarity(main_similarity)
            if main not in self.similarity_fns:
                raise ValueError(f"main_similarity {main!r} is not among similarity_fns {self.similarity_fns}")
        self.main_similarity = main
        self.primary_metric = self._key(f"spearman_{main}")

    def _key(self, metric: str) -> str:
        return f"{self.name}_{metric}" if self.name else metric

    def __call__(self, model: Any) -> dict[str, float]:
        """Encode the distinct sentences with ``model.encode`` and return the correlation metrics."""
        unique, embeddings = encode_unique(
            model, self.sentences1 + self.sentences2, self.batch_size, self.show_progress_bar
        )
        position = {text: i for i, text in enumerate(unique)}
        embeddings1 = embeddings[[position[t] for t in self.sentences1]]  # [n, dim]
        embeddings2 = embeddings[[position[t] for t in self.sentences2]]  # [n, dim]
        gold = np.asarray(self.scores, dtype=np.float64)

        metrics: dict[str, float] = {}
        for fn in self.similarity_fns:
            predicted = PAIRWISE_FUNCTIONS[fn](embeddings1, embeddings2).numpy()  # [n]
            metrics[f"pearson_{fn}"] = float(pearsonr(gold, predicted)[0])
            metrics[f"spearman_{fn}"] = float(spearmanr(gold, predicted)[0])
        if len(self.similarity_fns) > 1:
            metrics["pearson_max"] = max(metrics[f"pearson_{fn}"] for fn in self.similarity_fns)
            metrics["spearman_max"] = max(metrics[f"spearman_{fn}"] for fn in self.similarity_fns)
        return {self._key(key): value for key, value in metrics.items()}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, pairs={len(self.scores)}, "
            f"similarity_fns={self.similarity_fns}, primary_metric={self.primary_metric!r})"
        )
