"""Evaluators: callables ``evaluator(model) -> dict[str, float]`` over any object with ``encode(texts, batch_size)``.

Each evaluator exposes ``name`` and ``primary_metric`` (a key of the returned dict), with sentence-transformers'
metric names so results are comparable across the two libraries.
"""

from __future__ import annotations

from kosim.evaluation.similarity import EmbeddingSimilarityEvaluator
from kosim.evaluation.triplet import TripletEvaluator

__all__ = ["EmbeddingSimilarityEvaluator", "TripletEvaluator"]
