"""Evaluators: callables ``evaluator(model) -> dict[str, float]`` over any object with ``encode(texts, batch_size)``.

Each evaluator exposes ``name``, ``primary_metric`` (a key of the returned dict) and ``metric_keys`` (every key it
returns, in order), with sentence-transformers' metric names so results are comparable across the two libraries.
The input checks and helpers they share live in ``kosim.evaluation.common``.
"""

from __future__ import annotations

from kosim.evaluation.binary import BinaryClassificationEvaluator
from kosim.evaluation.information_retrieval import InformationRetrievalEvaluator
from kosim.evaluation.paraphrase import ParaphraseMiningEvaluator
from kosim.evaluation.sequential import SequentialEvaluator
from kosim.evaluation.similarity import EmbeddingSimilarityEvaluator
from kosim.evaluation.triplet import TripletEvaluator

__all__ = [
    "BinaryClassificationEvaluator",
    "EmbeddingSimilarityEvaluator",
    "InformationRetrievalEvaluator",
    "ParaphraseMiningEvaluator",
    "SequentialEvaluator",
    "TripletEvaluator",
]
