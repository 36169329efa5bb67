"""Triplet evaluation: how often is an anchor closer to its positive than to its negative?"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from kosim.evaluation.common import (
    ALL_SIMILARITIES,
    SimilarityChoice,
    check_batch_size,
    check_texts,
    check_truncate_dim,
    encode_role,
    metric_key,
)
from kosim.similarity import PAIRWISE_FUNCTIONS, resolve_similarity

__all__ = ["TripletEvaluator"]


class TripletEvaluator:
    """Accuracy of ``sim(anchor, positive) > sim(anchor, negative) + margin`` for each similarity function.

    Defaults, keys and numbers are sentence-transformers 6.2's: the model's own similarity unless
    ``similarity_fns`` (or ``main_similarity``) name others; anchors embedded with the model's ``encode_query``,
    positives and negatives with ``encode_document`` (its "query" / "document" prompts, when it has them); keys
    ``"{name}_cosine_accuracy"``, ... plus ``"{name}_max_accuracy"`` when several similarities are computed (no
    prefix without a name).

    Args:
        anchors, positives, negatives: ``n`` texts each.
        batch_size: passed to ``model.encode``.
        name: dataset name used as key prefix.
        similarity_fns: subset of ``"cosine"``, ``"euclidean"``, ``"manhattan"``, ``"dot"``; None:
            ``[main_similarity]`` when given, else the model's own similarity at each call.
        show_progress_bar: forwarded to ``model.encode`` when not None.
        margin: required gap, one number for every similarity or a mapping from similarity name to number (0
            for names it leaves out).
        main_similarity: the similarity of the primary metric (must be computed); None: ``"max_accuracy"`` when
            several are computed, else the only one's accuracy.
        truncate_dim: keep only the first ``truncate_dim`` embedding dimensions (Matryoshka evaluation).
        pool: an ``EncodePool`` (or ``RankShards()``) from :mod:`kosim.encode_pool`, passed to the model's encode.

    Attributes:
        primary_metric: the key of the headline number, e.g. ``"nli_cosine_accuracy"``.
        metric_keys: every key a call returns, in the order it returns them.
    """

    def __init__(
        self,
        anchors: Sequence[str],
        positives: Sequence[str],
        negatives: Sequence[str],
        batch_size: int = 16,
        name: str = "",
        similarity_fns: Sequence[str] | None = None,
        show_progress_bar: bool | None = None,
        margin: float | Mapping[str, float] = 0.0,
        main_similarity: str | None = None,
        truncate_dim: int | None = None,
        pool: Any = None,
    ) -> None:
        self.anchors = check_texts(anchors, "anchors")
        self.positives = check_texts(positives, "positives")
        self.negatives = check_texts(negatives, "negatives")
        if not len(self.anchors) == len(self.positives) == len(self.negatives):
            raise ValueError(
                "anchors, positives and negatives must have the same length, got "
                f"{len(self.anchors)}, {len(self.positives)} and {len(self.negatives)}"
            )
        if not self.anchors:
            raise ValueError("need at least one triplet")
        self.batch_size = check_batch_size(batch_size)
        self.name = name
        self.show_progress_bar = show_progress_bar
        self.truncate_dim = check_truncate_dim(truncate_dim)
        self.pool = pool
        self.choice = SimilarityChoice(similarity_fns, main_similarity)
        self.main_similarity = self.choice.main
        if isinstance(margin, Mapping):
            margins = {resolve_similarity(key): float(value) for key, value in margin.items()}
        else:
            margins = dict.fromkeys(ALL_SIMILARITIES, float(margin))
        for key, value in margins.items():
            if not math.isfinite(value):
                raise ValueError(f"margin for {key!r} must be finite, got {value}")
        self.margin = {fn: margins.get(fn, 0.0) for fn in ALL_SIMILARITIES}

    @property
    def similarity_fns(self) -> list[str]:
        """The similarities computed (those of the last call when they come from the model)."""
        return self.choice.current

    @property
    def primary_metric(self) -> str:
        return metric_key(self.name, f"{self.choice.primary}_accuracy")

    @property
    def metric_keys(self) -> list[str]:
        """The keys of the dict a call returns, in its order (for model cards and loggers)."""
        metrics = [f"{fn}_accuracy" for fn in self.choice.current]
        if len(self.choice.current) > 1:
            metrics.append("max_accuracy")
        return [metric_key(self.name, metric) for metric in metrics]

    def __call__(self, model: Any) -> dict[str, float]:
        """Embed anchors as queries and positives / negatives as documents; one accuracy per similarity."""
        fns = self.choice.for_model(model)
        n = len(self.anchors)
        anchors = encode_role(  # [n, dim]
            model, self.anchors, "query", self.batch_size, self.show_progress_bar, self.pool
        )
        documents = encode_role(  # [2n, dim]: positives, then negatives
            model, self.positives + self.negatives, "document", self.batch_size, self.show_progress_bar, self.pool
        )
        positives, negatives = documents[:n], documents[n:]
        if self.truncate_dim is not None:
            dim = self.truncate_dim
            anchors, positives, negatives = anchors[:, :dim], positives[:, :dim], negatives[:, :dim]

        metrics: dict[str, float] = {}
        for fn in fns:
            similarity = PAIRWISE_FUNCTIONS[fn]
            correct = similarity(anchors, positives) > similarity(anchors, negatives) + self.margin[fn]
            metrics[f"{fn}_accuracy"] = int(correct.sum()) / correct.numel()
        if len(fns) > 1:
            metrics["max_accuracy"] = max(metrics.values())
        return {metric_key(self.name, key): value for key, value in metrics.items()}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, triplets={len(self.anchors)}, "
            f"similarity_fns={self.choice.configured or 'model'}, primary_metric={self.primary_metric!r})"
        )
