"""Paraphrase mining evaluation: mine the most similar pairs of a corpus and score them against known duplicates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kosim.evaluation.common import check_batch_size, check_texts, encode_unique, metric_key
from kosim.search import topk_search

__all__ = ["ParaphraseMiningEvaluator", "duplicate_pairs", "mine_paraphrases"]

PARAPHRASE_METRICS = ("average_precision", "f1", "precision", "recall", "threshold")


def _positive_int(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return value


def mine_paraphrases(
    embeddings: Tensor,
    top_k: int = 100,
    max_pairs: int = 500_000,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100_000,
) -> list[tuple[float, int, int]]:
    """The ``max_pairs`` most cosine-similar pairs ``(score, i, j)`` with ``i < j``, best first.

    Each row's ``top_k`` nearest other rows are candidates (found with :func:`kosim.search.topk_search`, chunked, so
    memory stays bounded); a pair found from both ends counts once. The same pairs as sentence-transformers'
    ``paraphrase_mining`` (up to the order of equal scores).
    """
    if embeddings.shape[0] < 2:
        return []
    k = min(top_k + 1, embeddings.shape[0])
    scores, index = topk_search(embeddings, embeddings, k, "cos", corpus_chunk_size, query_chunk_size)  # [n, k]
    rows = torch.arange(embeddings.shape[0], device=index.device).unsqueeze(1).expand_as(index)
    not_self = index != rows
    # Each row's first top_k neighbours other than itself (a row may be missing from its own list on ties).
    keep = not_self & (not_self.cumsum(dim=1) <= top_k)
    score, i, j = scores[keep].cpu().numpy(), rows[keep].cpu().numpy(), index[keep].cpu().numpy()
    low, high = np.minimum(i, j), np.maximum(i, j)
    _, first = np.unique(low.astype(np.int64) * embeddings.shape[0] + high, return_index=True)  # first sighting
    first = np.sort(first)
    order = first[np.argsort(-score[first], kind="stable")][:max_pairs]
    return [(s, a, b) for s, a, b in zip(score[order].tolist(), low[order].tolist(), high[order].tolist())]


def duplicate_pairs(
    ids: Sequence[Any],
    duplicates_list: Iterable[tuple[Any, Any]] | None,
    duplicates_dict: Mapping[Any, Mapping[Any, bool]] | None,
    add_transitive_closure: bool,
) -> set[frozenset]:
    """The known duplicate pairs among ``ids`` as unordered pairs (``frozenset({a, b})``).

    ``duplicates_dict[a][b]`` true (in either direction) or ``(a, b)`` in ``duplicates_list`` marks a pair; with
    ``add_transitive_closure`` every two ids connected by a chain of duplicates are duplicates too.
    """
    known = set(ids)
    edges: list[tuple[Any, Any]] = []
    for a, row in (duplicates_dict or {}).items():
        edges += [(a, b) for b, is_duplicate in row.items() if is_duplicate]
    edges += [(a, b) for a, b in duplicates_list or ()]
    edges = [(a, b) for a, b in edges if a in known and b in known]
    if add_transitive_closure:
        parent: dict[Any, Any] = {}

        def root(x: Any) -> Any:
            while parent.setdefault(x, x) != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for a, b in edges:
            parent[root(a)] = root(b)
        components: dict[Any, list[Any]] = {}
        for x in list(parent):
            components.setdefault(root(x), []).append(x)
        edges += [(a, b) for members in components.values() for n, a in enumerate(members) for b in members[n + 1 :]]
    return {frozenset((a, b)) for a, b in edges}


def _score_pairs(is_duplicate: np.ndarray, scores: np.ndarray, total: int) -> dict[str, float]:
    """Average precision and the best-F1 threshold over the ranked pairs (equal scores ranked together)."""
    if scores.size == 0 or total == 0:
        return dict.fromkeys(PARAPHRASE_METRICS, 0.0)
    ends = np.flatnonzero(np.append(scores[1:] != scores[:-1], True))
    correct = np.cumsum(is_duplicate)[ends]
    gained = np.diff(np.concatenate([[0], correct]))
    precision = correct / (ends + 1)
    recall = correct / total
    with np.errstate(invalid="ignore"):
        f1 = np.where(gained > 0, 2 * precision * recall / (precision + recall), 0.0)
    average_precision = float(np.sum(precision * gained)) / total
    if not f1.max() > 0:
        return {"average_precision": average_precision, "f1": 0.0, "precision": 0.0, "recall": 0.0, "threshold": 0.0}
    k = int(np.argmax(f1))
    end = int(ends[k])
    threshold = (float(scores[end]) + float(scores[min(end + 1, scores.size - 1)])) / 2
    return {
        "average_precision": average_precision,
        "f1": float(f1[k]),
        "precision": float(precision[k]),
        "recall": float(recall[k]),
        "threshold": threshold,
    }


class ParaphraseMiningEvaluator:
    """Mine the most similar pairs of ``sentences_map`` and report how well they recover the known duplicates.

    The mined pairs (:func:`mine_paraphrases`: cosine, each sentence's ``top_k`` neighbours, at most ``max_pairs``)
    are ranked by score; the metrics are the average precision of that ranking and the precision, recall and F1 at
    the best threshold (the midpoint between the score where F1 peaks and the next one). Keys and numbers follow
    sentence-transformers 6.2: ``"{name}_average_precision"`` (the primary metric), ``_f1``, ``_precision``,
    ``_recall``, ``_threshold``.

    Args:
        sentences_map: ``{id: sentence}``.
        duplicates_list: ``(id1, id2)`` pairs that are duplicates (pairs with an unknown id are ignored).
        duplicates_dict: ``{id1: {id2: True}}``; either direction marks the pair.
        add_transitive_closure: duplicates of duplicates are duplicates (ids joined by a chain of pairs).
        query_chunk_size, corpus_chunk_size: the chunks of the search (memory, not results).
        max_pairs: at most this many mined pairs are ranked.
        top_k: neighbours per sentence.
        show_progress_bar: forwarded to ``model.encode``.
        batch_size: passed to ``model.encode``.
        name: dataset name used as key prefix.
        write_csv: accepted for sentence-transformers' signature; kosim's evaluators write no files, so True raises.
        truncate_dim: keep only the first ``truncate_dim`` embedding dimensions (Matryoshka evaluation).
        pool: an ``EncodePool`` (or ``RankShards()``) from :mod:`kosim.encode_pool`, passed to the model's encode.
    """

    def __init__(
        self,
        sentences_map: Mapping[Any, str],
        duplicates_list: Iterable[tuple[Any, Any]] | None = None,
        duplicates_dict: Mapping[Any, Mapping[Any, bool]] | None = None,
        add_transitive_closure: bool = False,
        query_chunk_size: int = 5000,
        corpus_chunk_size: int = 100_000,
        max_pairs: int = 500_000,
        top_k: int = 100,
        show_progress_bar: bool = False,
        batch_size: int = 16,
        name: str = "",
        write_csv: bool = False,
        truncate_dim: int | None = None,
        pool: Any = None,
    ) -> None:
        if not isinstance(sentences_map, Mapping):
            raise TypeError(f"sentences_map must be a mapping {{id: sentence}}, got {type(sentences_map).__name__}")
        self.ids = list(sentences_map)
        self.sentences = check_texts([sentences_map[i] for i in self.ids], "sentences_map values")
        self.query_chunk_size = _positive_int(query_chunk_size, "query_chunk_size")
        self.corpus_chunk_size = _positive_int(corpus_chunk_size, "corpus_chunk_size")
        self.max_pairs = _positive_int(max_pairs, "max_pairs")
        self.top_k = _positive_int(top_k, "top_k")
        self.batch_size = check_batch_size(batch_size)
        self.show_progress_bar = show_progress_bar
        if write_csv:
            raise ValueError(
                "write_csv=True is not supported: kosim's evaluators return their metrics and write no files"
            )
        self.truncate_dim = None if truncate_dim is None else _positive_int(truncate_dim, "truncate_dim")
        self.pool = pool
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.name = name
        self.add_transitive_closure = bool(add_transitive_closure)
        self.duplicates = duplicate_pairs(self.ids, duplicates_list, duplicates_dict, self.add_transitive_closure)
        self.total_num_duplicates = len(self.duplicates)
        self.primary_metric = metric_key(name, "average_precision")

    @property
    def metric_keys(self) -> list[str]:
        """The keys of the dict a call returns, in its order."""
        return [metric_key(self.name, key) for key in PARAPHRASE_METRICS]

    def __call__(self, model: Any) -> dict[str, float]:
        """Encode the sentences with ``model.encode``, mine pairs and score them against the duplicates."""
        unique, embeddings = encode_unique(model, self.sentences, self.batch_size, self.show_progress_bar, self.pool)
        position = {text: i for i, text in enumerate(unique)}
        embeddings = embeddings[[position[text] for text in self.sentences]]  # [n, dim], one row per id
        if self.truncate_dim is not None:
            embeddings = embeddings[:, : self.truncate_dim]
        pairs = mine_paraphrases(embeddings, self.top_k, self.max_pairs, self.query_chunk_size, self.corpus_chunk_size)
        ids = self.ids
        is_duplicate = np.array([frozenset((ids[i], ids[j])) in self.duplicates for _, i, j in pairs], dtype=np.int64)
        scores = np.array([score for score, _, _ in pairs], dtype=np.float64)
        metrics = _score_pairs(is_duplicate, scores, self.total_num_duplicates)
        return {metric_key(self.name, key): metrics[key] for key in PARAPHRASE_METRICS}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, sentences={len(self.ids)}, "
            f"duplicates={self.total_num_duplicates}, primary_metric={self.primary_metric!r})"
        )
