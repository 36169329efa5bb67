"""kosim.st.evaluation vs sentence_transformers.evaluation, same constructor arguments: equal metrics."""

from __future__ import annotations

import pytest
from helpers import KOREAN

st = pytest.importorskip("sentence_transformers")
from sentence_transformers import evaluation as st_evaluation  # noqa: E402

from kosim.st import evaluation  # noqa: E402

S1, S2 = KOREAN[:6], [t[::-1] for t in KOREAN[:6]]
SCORES = [0.1, 0.9, 0.4, 0.7, 0.0, 1.0]

CASES = {
    "EmbeddingSimilarityEvaluator": ((S1, S2, SCORES), {"name": "sts"}),
    "EmbeddingSimilarityEvaluator-all": (
        (S1, S2, SCORES),
        {"similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"]},
    ),
    "TripletEvaluator": ((S1, S2, KOREAN[2:8]), {"name": "tri"}),
    "BinaryClassificationEvaluator": ((S1, S2, [0, 1, 1, 0, 1, 0]), {"name": "bin"}),
}


def _close(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-5), key


@pytest.mark.parametrize("case", list(CASES))
def test_metrics_match(models, case):
    theirs, ours = models
    name = case.split("-")[0]
    args, kwargs = CASES[case]
    _close(getattr(evaluation, name)(*args, **kwargs)(ours), getattr(st_evaluation, name)(*args, **kwargs)(theirs))


def test_sequential(models):
    theirs, ours = models
    ours_eval = evaluation.SequentialEvaluator(
        [evaluation.EmbeddingSimilarityEvaluator(S1, S2, SCORES, name="a"), evaluation.TripletEvaluator(S1, S2, S2)]
    )
    theirs_eval = st_evaluation.SequentialEvaluator(
        [
            st_evaluation.EmbeddingSimilarityEvaluator(S1, S2, SCORES, name="a"),
            st_evaluation.TripletEvaluator(S1, S2, S2),
        ]
    )
    _close(ours_eval(ours), theirs_eval(theirs))


def test_unsupported_arguments(models):
    _, ours = models
    with pytest.raises(ValueError, match="precision"):
        evaluation.EmbeddingSimilarityEvaluator(S1, S2, SCORES, precision="int8")
    with pytest.raises(ValueError, match="output_path"):
        evaluation.EmbeddingSimilarityEvaluator(S1, S2, SCORES)(ours, output_path="out")
