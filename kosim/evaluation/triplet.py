"""Triplet evaluation: how often is an anchor closer to its positive than to its negative?"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from kosim.evaluation.common import (
    check_batch_size,
    check_texts,
    encode_columns,
    metric_key,
    resolve_main_similarity,
    resolve_similarity_fns,
)
from kosim.similarity import PAIRWISE_FUNCTIONS, resolve_similarity

__all__ = ["TripletEvaluator"]


class TripletEvaluator:
    """Accuracy of ``sim(anchor, positive) > sim(anchor, negative) + margin`` for each similarity function.

    Metric keys follow sentence-transformers 6.2: ``"{name}_cosine_accuracy"``, ``"{name}_dot_accuracy"``, ... plus
    ``"{name}_max_accuracy"`` when more than one similarity is computed (no prefix without a name). The numbers equal
    sentence-transformers' ``TripletEvaluator(similarity_fn_names=..., main_similarity_function="cosine")``.

    Args:
        anchors, positives, negatives: ``n`` texts each.
        batch_size: passed to ``model.encode``.
        name: dataset name used as key prefix.
        similarity_fns: subset of ``"cosine"``, ``"euclidean"``, ``"manhattan"``, ``"dot"``; all four when None.
        show_progress_bar: forwarded to ``model.encode`` when not None.
        margin: required gap, one number for every similarity or a mapping from similarity name to number (0
            for names it leaves out).
        main_similarity: similarity whose accuracy is the primary metric; ``"cosine"`` when computed, else the
            first of ``similarity_fns``.

    Attributes:
        primary_metric: the key of the headline number, e.g. ``"nli_cosine_accuracy"``.
        metric_keys: every key a call returns, in the order it returns them.
    """

    def __init__(
        self,
        anchors: Sequence[str],
        positives: Sequence[str],
        negatives: Sequence[str],
        batch_size: int = 32,
        name: str = "",
        similarity_fns: Sequence[str] | None = None,
        show_progress_bar: bool | None = None,
        margin: float | Mapping[str, float] = 0.0,
        main_similarity: str | None = None,
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
        self.similarity_fns = resolve_similarity_fns(similarity_fns)
        self.show_progress_bar = show_progress_bar
        if isinstance(margin, Mapping):
            margins = {resolve_similarity(key): float(value) for key, value in margin.items()}
        else:
            margins = {fn: float(margin) for fn in self.similarity_fns}
        for key, value in margins.items():
            if not math.isfinite(value):
                raise ValueError(f"margin for {key!r} must be finite, got {value}")
        self.margin = {fn: margins.get(fn, 0.0) for fn in self.similarity_fns}
        self.main_similarity = resolve_main_similarity(main_similarity, self.similarity_fns)
        self.primary_metric = metric_key(name, f"{self.main_similarity}_accuracy")

    @property
    def metric_keys(self) -> list[str]:
        """The keys of the dict a call returns, in its order (for model cards and loggers)."""
        metrics = [f"{fn}_accuracy" for fn in self.similarity_fns]
        if len(self.similarity_fns) > 1:
            metrics.append("max_accuracy")
        return [metric_key(self.name, metric) for metric in metrics]

    def __call__(self, model: Any) -> dict[str, float]:
        """Encode the distinct texts with ``model.encode`` and return one accuracy per similarity function."""
        anchors, positives, negatives = encode_columns(  # [n, dim] each
            model, [self.anchors, self.positives, self.negatives], self.batch_size, self.show_progress_bar
        )

        metrics: dict[str, float] = {}
        for fn in self.similarity_fns:
            similarity = PAIRWISE_FUNCTIONS[fn]
            correct = similarity(anchors, positives) > similarity(anchors, negatives) + self.margin[fn]
            metrics[f"{fn}_accuracy"] = int(correct.sum()) / correct.numel()
        if len(self.similarity_fns) > 1:
            metrics["max_accuracy"] = max(metrics.values())
        return {metric_key(self.name, key): value for key, value in metrics.items()}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, triplets={len(self.anchors)}, "
            f"similarity_fns={self.similarity_fns}, primary_metric={self.primary_metric!r})"
        )
