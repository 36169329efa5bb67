"""Binary pair classification: how well does a similarity threshold separate duplicates (1) from the rest (0)?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from kosim.evaluation.common import check_batch_size, check_texts, encode_columns, metric_key
from kosim.similarity import PAIRWISE_FUNCTIONS, resolve_similarity

__all__ = ["BINARY_METRICS", "BinaryClassificationEvaluator", "best_accuracy", "best_f1", "binary_metrics"]

# Per similarity, in sentence-transformers' order.
BINARY_METRICS = ("accuracy", "accuracy_threshold", "f1", "f1_threshold", "precision", "recall", "ap", "mcc")


def _group_ends(sorted_scores: np.ndarray) -> np.ndarray:
    """Indices of the last element of each run of equal scores in a sorted array."""
    return np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))


def _between(sorted_scores: np.ndarray, i: int) -> Any:
    """The threshold after group end ``i``: the midpoint to the next score (in the scores' dtype), or the score itself
    for the last group or when the midpoint rounds onto the next score."""
    score = sorted_scores[i]
    if i == sorted_scores.size - 1:
        return score
    middle = (score + sorted_scores[i + 1]) / 2
    return score if middle == sorted_scores[i + 1] else middle


def _sorted(scores: np.ndarray, labels: np.ndarray, greater_is_better: bool) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores if greater_is_better else scores, kind="stable")
    return scores[order], labels[order]


def best_accuracy(scores: np.ndarray, labels: np.ndarray, greater_is_better: bool) -> tuple[float, Any]:
    """The best accuracy of "similar when the score passes a threshold" over all thresholds, and that threshold.

    Predicting every pair dissimilar is the baseline (threshold just past the best score); a threshold between two
    distinct scores is their midpoint; the first best threshold (from the most similar end) wins.
    """
    s, y = _sorted(scores, labels, greater_is_better)
    n = y.size
    if n == 0:
        return 0.0, -1
    ends = _group_ends(s)
    positives = np.cumsum(y == 1)[ends]
    negatives_left = (y == 0).sum() - np.cumsum(y == 0)[ends]
    accuracy = (positives + negatives_left) / n
    best_acc = (y == 0).sum() / n
    threshold = np.nextafter(s[0], np.inf if greater_is_better else -np.inf, dtype=np.result_type(s.dtype, np.float16))
    k = int(np.argmax(accuracy))
    if accuracy[k] > best_acc:
        best_acc, threshold = accuracy[k], _between(s, int(ends[k]))
    return float(best_acc), threshold


def best_f1(scores: np.ndarray, labels: np.ndarray, greater_is_better: bool) -> tuple[float, float, float, Any]:
    """``(f1, precision, recall, threshold)`` at the threshold with the best F1 (the first one, from the most similar
    end); all zero when there is no positive."""
    s, y = _sorted(scores, labels, greater_is_better)
    ends = _group_ends(s)
    correct = np.cumsum(y == 1)[ends]
    extracted = ends + 1
    total = int(y.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = correct / extracted
        recall = correct / total
        f1 = np.where(correct > 0, 2 * precision * recall / (precision + recall), 0.0)
    if f1.size == 0 or not f1.max() > 0:
        return 0.0, 0.0, 0.0, 0
    k = int(np.argmax(f1))
    return float(f1[k]), float(precision[k]), float(recall[k]), _between(s, int(ends[k]))


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the step precision-recall curve, higher score = more likely positive (scikit-learn's definition:
    ``sum_k (R_k - R_{k-1}) P_k`` over the distinct scores, best first)."""
    s, y = _sorted(scores, labels, True)
    ends = _group_ends(s)
    tps = np.cumsum(y == 1)[ends]
    if tps.size == 0 or tps[-1] == 0:
        return 0.0
    precision = tps / (ends + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def matthews_corrcoef(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Matthews correlation of two binary label arrays (0 when a marginal is constant)."""
    y, p = labels.astype(bool), predicted.astype(bool)
    tp, tn = float((y & p).sum()), float((~y & ~p).sum())
    fp, fn = float((~y & p).sum()), float((y & ~p).sum())
    denominator = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return 0.0 if denominator == 0 else (tp * tn - fp * fn) / np.sqrt(denominator)


def binary_metrics(scores: np.ndarray, labels: np.ndarray, greater_is_better: bool) -> dict[str, float]:
    """The eight :data:`BINARY_METRICS` of one similarity's scores against 0/1 labels."""
    acc, acc_threshold = best_accuracy(scores, labels, greater_is_better)
    f1, precision, recall, f1_threshold = best_f1(scores, labels, greater_is_better)
    ap = average_precision(scores if greater_is_better else -scores, labels)
    predicted = scores >= f1_threshold if greater_is_better else scores <= f1_threshold
    values = {
        "accuracy": acc,
        "accuracy_threshold": acc_threshold,
        "f1": f1,
        "f1_threshold": f1_threshold,
        "precision": precision,
        "recall": recall,
        "ap": ap,
        "mcc": matthews_corrcoef(labels, predicted),
    }
    return {key: float(value) for key, value in values.items()}


class BinaryClassificationEvaluator:
    """Accuracy, F1, precision, recall, average precision and Matthews correlation of thresholded similarities.

    For each similarity (cosine and dot: higher is similar; euclidean and manhattan *distances*: lower is similar)
    the best threshold for accuracy and the best one for F1 are searched over all scores. Keys follow
    sentence-transformers 6.2: ``"{name}_{sim}_{metric}"`` for the :data:`BINARY_METRICS`, plus ``"{name}_max_{metric}"``
    when several similarities are computed. The numbers equal sentence-transformers' on the same embeddings.

    Args:
        sentences1, sentences2: the two sides of each pair (``n`` each).
        labels: ``n`` labels, each 0 or 1.
        name: dataset name used as key prefix.
        batch_size: passed to ``model.encode``.
        show_progress_bar: forwarded to ``model.encode``.
        write_csv: accepted for sentence-transformers' signature; kosim's evaluators write no files, so True raises.
        truncate_dim: keep only the first ``truncate_dim`` embedding dimensions (Matryoshka evaluation).
        similarity_fn_names: subset of ``"cosine"``, ``"dot"``, ``"euclidean"``, ``"manhattan"``; None uses the
            model's own ``similarity_fn_name`` at each call (cosine for a model without one), as
            sentence-transformers does.
        pool: an ``EncodePool`` (or ``RankShards()``) from :mod:`kosim.encode_pool`, passed to the model's encode.

    Attributes:
        primary_metric: ``"{name}_{sim}_ap"``, or ``"{name}_max_ap"`` with several similarities (before the first
            call of an evaluator without ``similarity_fn_names``: the cosine one).
        metric_keys: every key a call returns, in its order.
    """

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        labels: Sequence[int],
        name: str = "",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = False,
        truncate_dim: int | None = None,
        similarity_fn_names: Sequence[str] | None = None,
        pool: Any = None,
    ) -> None:
        self.sentences1 = check_texts(sentences1, "sentences1")
        self.sentences2 = check_texts(sentences2, "sentences2")
        labels = list(labels)
        if not len(self.sentences1) == len(self.sentences2) == len(labels):
            raise ValueError(
                "sentences1, sentences2 and labels must have the same length, got "
                f"{len(self.sentences1)}, {len(self.sentences2)} and {len(labels)}"
            )
        if not labels:
            raise ValueError("need at least one labelled pair")
        for i, label in enumerate(labels):
            if isinstance(label, bool) or label not in (0, 1):
                raise ValueError(f"labels[{i}] must be 0 or 1, got {label!r}")
        self.labels = np.asarray(labels, dtype=np.int64)
        if write_csv:
            raise ValueError(
                "write_csv=True is not supported: kosim's evaluators return their metrics and write no files"
            )
        if truncate_dim is not None and (
            isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int) or truncate_dim < 1
        ):
            raise ValueError(f"truncate_dim must be None or a positive int, got {truncate_dim!r}")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.name = name
        self.batch_size = check_batch_size(batch_size)
        self.show_progress_bar = show_progress_bar
        self.truncate_dim = truncate_dim
        self.pool = pool
        self.similarity_fn_names: list[str] | None = None
        self._last_names = ["cosine"]
        if similarity_fn_names is not None:
            self.similarity_fn_names = list(dict.fromkeys(resolve_similarity(fn) for fn in similarity_fn_names))
            if not self.similarity_fn_names:
                raise ValueError("similarity_fn_names must name at least one similarity function")

    def _names(self, model: Any) -> list[str]:
        if self.similarity_fn_names is not None:
            return self.similarity_fn_names
        return [resolve_similarity(getattr(model, "similarity_fn_name", None) or "cosine")]

    @property
    def _current_names(self) -> list[str]:
        """The similarities of the last call (or the configured ones; cosine before a first call without them)."""
        return self.similarity_fn_names or self._last_names

    @property
    def primary_metric(self) -> str:
        names = self._current_names
        return metric_key(self.name, "max_ap" if len(names) > 1 else f"{names[0]}_ap")

    @property
    def metric_keys(self) -> list[str]:
        """The keys of the dict a call returns, in its order (for model cards and loggers)."""
        names = self._current_names
        keys = [f"{fn}_{metric}" for fn in names for metric in BINARY_METRICS]
        if len(names) > 1:
            keys += [f"max_{metric}" for metric in BINARY_METRICS]
        return [metric_key(self.name, key) for key in keys]

    def __call__(self, model: Any) -> dict[str, float]:
        """Encode the distinct texts with ``model.encode`` and return the metrics of each similarity."""
        self._last_names = self._names(model)
        emb1, emb2 = encode_columns(  # [n, dim] each
            model, [self.sentences1, self.sentences2], self.batch_size, self.show_progress_bar, self.pool
        )
        if self.truncate_dim is not None:
            emb1, emb2 = emb1[:, : self.truncate_dim], emb2[:, : self.truncate_dim]
        per_fn: dict[str, dict[str, float]] = {}
        for fn in self._last_names:
            with torch.no_grad():
                scores = PAIRWISE_FUNCTIONS[fn](emb1, emb2).cpu().numpy()  # [n]: similarities
            greater_is_better = fn in ("cosine", "dot")
            per_fn[fn] = binary_metrics(scores if greater_is_better else -scores, self.labels, greater_is_better)
        metrics = {f"{fn}_{key}": value for fn, values in per_fn.items() for key, value in values.items()}
        if len(per_fn) > 1:
            metrics.update({f"max_{key}": max(values[key] for values in per_fn.values()) for key in BINARY_METRICS})
        return {metric_key(self.name, key): value for key, value in metrics.items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, pairs={len(self.labels)}, primary_metric={self.primary_metric!r})"
