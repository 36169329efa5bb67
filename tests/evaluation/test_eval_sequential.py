"""SequentialEvaluator against sentence-transformers 6.2: the merged metrics and the sequential score."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from fake_st_encoder import TableEncoder
from sentence_transformers.base.evaluation import SequentialEvaluator as STSequentialEvaluator
from sentence_transformers.sentence_transformer.evaluation import (
    BinaryClassificationEvaluator as STBinaryClassificationEvaluator,
)
from sentence_transformers.sentence_transformer.evaluation import TripletEvaluator as STTripletEvaluator

from kosim.evaluation import TripletEvaluator
from kosim.evaluation.binary import BinaryClassificationEvaluator
from kosim.evaluation.sequential import SequentialEvaluator

TEXTS = [f"t{i}" for i in range(30)]


@pytest.fixture(scope="module")
def model() -> TableEncoder:
    rng = np.random.default_rng(0)
    return TableEncoder({t: rng.standard_normal(8) for t in TEXTS})


def pairs():
    return TEXTS[:15], TEXTS[15:], [i % 2 for i in range(15)]


def triplets():
    return TEXTS[:10], TEXTS[10:20], TEXTS[20:]


@pytest.mark.parametrize("main_score_function", [None, statistics.mean, max])
def test_matches_sentence_transformers(model, main_score_function):
    kwargs = {} if main_score_function is None else {"main_score_function": main_score_function}
    ours = SequentialEvaluator(
        [
            BinaryClassificationEvaluator(*pairs(), name="bin"),
            TripletEvaluator(*triplets(), name="tri", similarity_fns=["cosine"]),
        ],
        **kwargs,
    )
    theirs = STSequentialEvaluator(
        [
            STBinaryClassificationEvaluator(*pairs(), name="bin", write_csv=False),
            STTripletEvaluator(*triplets(), name="tri", write_csv=False),
        ],
        **kwargs,
    )
    result, expected = ours(model), theirs(model)
    assert list(result) == list(expected)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-6), key
    assert ours.primary_metric == theirs.primary_metric == "sequential_score"
    assert ours.metric_keys == list(result)


def test_bare_numbers_and_missing_primary(model):
    class Number:
        def __call__(self, model):
            return 0.25

    class NoPrimary:
        def __call__(self, model):
            return {"a": 0.5, "b": 0.75}

    result = SequentialEvaluator([NoPrimary(), Number()], main_score_function=sum)(model)
    assert result == {"a": 0.5, "b": 0.75, "evaluator_1": 0.25, "sequential_score": 0.75}
    assert SequentialEvaluator([])(model) == {"sequential_score": 0.0}


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"evaluators\[0\]"):
        SequentialEvaluator(["not an evaluator"])
    with pytest.raises(TypeError, match="main_score_function"):
        SequentialEvaluator([], main_score_function=1)
