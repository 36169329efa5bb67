"""kosim.st.evaluation vs sentence_transformers.evaluation, same constructor arguments: equal metrics, primary
metrics and CSV files (on one tiny BERT with query / document prompts, loaded by both libraries)."""

from __future__ import annotations

import csv

import pytest
from helpers import KOREAN

st = pytest.importorskip("sentence_transformers")
from sentence_transformers import evaluation as st_evaluation  # noqa: E402

from kosim.st import evaluation  # noqa: E402

S1, S2 = KOREAN[:6], [t[::-1] for t in KOREAN[:6]]
SCORES = [0.1, 0.9, 0.4, 0.7, 0.0, 1.0]
ALL = ["cosine", "dot", "euclidean", "manhattan"]
QUERIES = {f"q{i}": t for i, t in enumerate(KOREAN[:5])}
CORPUS = {f"d{i}": t[::-1] for i, t in enumerate(KOREAN)}
RELEVANT = {f"q{i}": {f"d{i}", f"d{(i + 3) % len(KOREAN)}"} for i in range(5)}

CASES = {
    "EmbeddingSimilarityEvaluator": ((S1, S2, SCORES), {"name": "sts"}),
    "EmbeddingSimilarityEvaluator-all": ((S1, S2, SCORES), {"similarity_fn_names": ALL}),
    "EmbeddingSimilarityEvaluator-main": ((S1, S2, SCORES), {"main_similarity": "manhattan", "name": "m"}),
    "EmbeddingSimilarityEvaluator-all-main": (
        (S1, S2, SCORES),
        {"similarity_fn_names": ALL, "main_similarity": "dot", "truncate_dim": 16},
    ),
    "TripletEvaluator": ((S1, S2, KOREAN[2:8]), {"name": "tri"}),
    "TripletEvaluator-all": ((S1, S2, KOREAN[2:8]), {"similarity_fn_names": ALL, "margin": {"cosine": 0.01}}),
    "TripletEvaluator-main": ((S1, S2, KOREAN[2:8]), {"main_similarity_function": "euclidean", "batch_size": 2}),
    "BinaryClassificationEvaluator": ((S1, S2, [0, 1, 1, 0, 1, 0]), {"name": "bin"}),
    "BinaryClassificationEvaluator-all": ((S1, S2, [0, 1, 1, 0, 1, 0]), {"similarity_fn_names": ALL}),
    "ParaphraseMiningEvaluator": (
        ({i: t for i, t in enumerate(KOREAN + S2)},),
        {"duplicates_list": [(0, len(KOREAN)), (1, len(KOREAN) + 1), (2, 5)], "name": "para", "top_k": 3},
    ),
    "InformationRetrievalEvaluator": ((QUERIES, CORPUS, RELEVANT), {"name": "ir"}),
    "InformationRetrievalEvaluator-k": (
        (QUERIES, CORPUS, RELEVANT),
        {"ndcg_at_k": [3, 5], "map_at_k": [4], "corpus_chunk_size": 3, "query_prompt_name": "query"},
    ),
}


def _close(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.parametrize("case", list(CASES))
def test_metrics_match(models, case):
    theirs, ours = models
    name = case.split("-")[0]
    args, kwargs = CASES[case]
    if name == "InformationRetrievalEvaluator":
        kwargs = {**kwargs, "write_csv": False}
    ours_eval, theirs_eval = getattr(evaluation, name)(*args, **kwargs), getattr(st_evaluation, name)(*args, **kwargs)
    _close(ours_eval(ours), theirs_eval(theirs))
    assert ours_eval.primary_metric == theirs_eval.primary_metric
    assert ours_eval.greater_is_better is theirs_eval.greater_is_better is True


@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith("Information")])
def test_csv_files_match(models, case, tmp_path):
    theirs, ours = models
    name = case.split("-")[0]
    args, kwargs = CASES[case]
    for lib, model, where in ((st_evaluation, theirs, "theirs"), (evaluation, ours, "ours")):
        evaluator = getattr(lib, name)(*args, **kwargs)
        evaluator(model, output_path=str(tmp_path / where), epoch=1, steps=10)
        evaluator(model, output_path=str(tmp_path / where), epoch=2, steps=20)
    files = sorted(p.name for p in (tmp_path / "theirs").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "ours").iterdir()) and len(files) == 1
    rows = [list(csv.reader(open(tmp_path / w / files[0], encoding="utf-8"))) for w in ("theirs", "ours")]
    assert rows[0][0] == rows[1][0] and len(rows[0]) == len(rows[1]) == 3
    for expected, got in zip(rows[0][1:], rows[1][1:]):
        assert [float(v) for v in got] == pytest.approx([float(v) for v in expected], abs=1e-6)


def test_sequential_and_a_list_of_evaluators(models, tmp_path):
    theirs, ours = models

    def build(lib):
        return lib.SequentialEvaluator(
            [
                lib.EmbeddingSimilarityEvaluator(S1, S2, SCORES, name="a"),
                lib.TripletEvaluator(S1, S2, S2),
                lib.BinaryClassificationEvaluator(S1, S2, [0, 1, 1, 0, 1, 0], name="b"),
            ]
        )

    _close(build(evaluation)(ours), build(st_evaluation)(theirs))
    _close(build(evaluation)(ours, str(tmp_path / "o"), 1, 5), build(st_evaluation)(theirs, str(tmp_path / "t"), 1, 5))
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted(p.name for p in (tmp_path / "t").iterdir())


def test_from_input_examples(models):
    from sentence_transformers import InputExample as STInputExample

    from kosim.st import InputExample

    theirs, ours = models
    pairs = [(a, b, s) for a, b, s in zip(S1, S2, SCORES)]
    ours_eval = evaluation.EmbeddingSimilarityEvaluator.from_input_examples(
        [InputExample(texts=[a, b], label=s) for a, b, s in pairs], name="ex"
    )
    theirs_eval = st_evaluation.EmbeddingSimilarityEvaluator.from_input_examples(
        [STInputExample(texts=[a, b], label=s) for a, b, s in pairs], name="ex"
    )
    _close(ours_eval(ours), theirs_eval(theirs))
    triplets = [[a, p, n] for a, p, n in zip(S1, S2, KOREAN[2:8])]
    _close(
        evaluation.TripletEvaluator.from_input_examples([InputExample(texts=t) for t in triplets])(ours),
        st_evaluation.TripletEvaluator.from_input_examples([STInputExample(texts=t) for t in triplets])(theirs),
    )


def test_unsupported_arguments(models):
    _, ours = models
    with pytest.raises(ValueError, match="precision"):
        evaluation.EmbeddingSimilarityEvaluator(S1, S2, SCORES, precision="int8")
    with pytest.raises(ValueError, match="output_path"):
        evaluation.InformationRetrievalEvaluator(QUERIES, CORPUS, RELEVANT)(ours, output_path="out")
    with pytest.raises(TypeError, match="margins"):
        evaluation.TripletEvaluator(S1, S2, S2, margins=0.1)
