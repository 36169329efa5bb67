"""STS-style evaluation: correlate embedding similarities of sentence pairs with gold similarity scores."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr

# ALL_SIMILARITIES, encode_unique and resolve_similarity_fns lived here before kosim.evaluation.common; re-exported.
from kosim.evaluation.common import (
    ALL_SIMILARITIES,
    SimilarityChoice,
    check_batch_size,
    check_texts,
    check_truncate_dim,
    encode_columns,
    encode_unique,
    metric_key,
    resolve_similarity_fns,
)
from kosim.similarity import PAIRWISE_FUNCTIONS

__all__ = ["ALL_SIMILARITIES", "EmbeddingSimilarityEvaluator", "encode_unique", "resolve_similarity_fns"]


class EmbeddingSimilarityEvaluator:
    """Pearson and Spearman correlation between gold scores and embedding similarities of sentence pairs.

    Defaults, keys and numbers are sentence-transformers 6.2's: the model's own similarity (``similarity_fn_name``)
    unless ``similarity_fns`` (or ``main_similarity``) name others; keys ``"{name}_pearson_cosine"``,
    ``"{name}_spearman_cosine"``, ... per similarity, plus ``"{name}_pearson_max"`` / ``"{name}_spearman_max"`` when
    several are computed; no ``"{name}_"`` prefix without a name.

    Args:
        sentences1, sentences2: the two sides of each pair (``n`` each).
        scores: ``n`` finite gold scores (any scale: only correlations are reported).
        batch_size: passed to ``model.encode``.
        name: dataset name used as key prefix, e.g. ``"sts-dev"``.
        similarity_fns: subset of ``"cosine"``, ``"euclidean"``, ``"manhattan"``, ``"dot"`` (aliases allowed);
            None: ``[main_similarity]`` when given, else the model's own similarity at each call.
        show_progress_bar: forwarded to ``model.encode`` when not None.
        main_similarity: the similarity of the primary metric (must be computed); None: ``"spearman_max"`` when
            several similarities are computed, else the only one's Spearman correlation.
        truncate_dim: keep only the first ``truncate_dim`` embedding dimensions (Matryoshka evaluation).
        pool: an ``EncodePool`` (or ``RankShards()``) from :mod:`kosim.encode_pool`, passed to the model's encode.

    Attributes:
        primary_metric: the key of the headline number, e.g. ``"sts-dev_spearman_cosine"``.
        metric_keys: every key a call returns, in the order it returns them.
    """

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        scores: Sequence[float],
        batch_size: int = 16,
        name: str = "",
        similarity_fns: Sequence[str] | None = None,
        show_progress_bar: bool | None = None,
        main_similarity: str | None = None,
        truncate_dim: int | None = None,
        pool: Any = None,
    ) -> None:
        self.sentences1 = check_texts(sentences1, "sentences1")
        self.sentences2 = check_texts(sentences2, "sentences2")
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
        self.batch_size = check_batch_size(batch_size)
        self.name = name
        self.show_progress_bar = show_progress_bar
        self.truncate_dim = check_truncate_dim(truncate_dim)
        self.pool = pool
        self.choice = SimilarityChoice(similarity_fns, main_similarity)
        self.main_similarity = self.choice.main

    @property
    def similarity_fns(self) -> list[str]:
        """The similarities computed (those of the last call when they come from the model)."""
        return self.choice.current

    @property
    def primary_metric(self) -> str:
        return metric_key(self.name, f"spearman_{self.choice.primary}")

    @property
    def metric_keys(self) -> list[str]:
        """The keys of the dict a call returns, in its order (for model cards and loggers)."""
        fns = self.choice.current
        metrics = [f"{kind}_{fn}" for fn in fns for kind in ("pearson", "spearman")]
        if len(fns) > 1:
            metrics += ["pearson_max", "spearman_max"]
        return [metric_key(self.name, metric) for metric in metrics]

    def __call__(self, model: Any) -> dict[str, float]:
        """Encode the distinct sentences with ``model.encode`` and return the correlation metrics."""
        fns = self.choice.for_model(model)
        embeddings1, embeddings2 = encode_columns(  # [n, dim] each
            model, [self.sentences1, self.sentences2], self.batch_size, self.show_progress_bar, self.pool
        )
        if self.truncate_dim is not None:
            embeddings1, embeddings2 = embeddings1[:, : self.truncate_dim], embeddings2[:, : self.truncate_dim]
        gold = np.asarray(self.scores, dtype=np.float64)

        metrics: dict[str, float] = {}
        for fn in fns:
            predicted = PAIRWISE_FUNCTIONS[fn](embeddings1, embeddings2).numpy()  # [n]
            metrics[f"pearson_{fn}"] = float(pearsonr(gold, predicted)[0])
            metrics[f"spearman_{fn}"] = float(spearmanr(gold, predicted)[0])
        if len(fns) > 1:
            metrics["pearson_max"] = max(metrics[f"pearson_{fn}"] for fn in fns)
            metrics["spearman_max"] = max(metrics[f"spearman_{fn}"] for fn in fns)
        return {metric_key(self.name, key): value for key, value in metrics.items()}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, pairs={len(self.scores)}, "
            f"similarity_fns={self.choice.configured or 'model'}, primary_metric={self.primary_metric!r})"
        )
