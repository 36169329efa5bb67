"""BinaryClassificationEvaluator against sentence-transformers 6.2 on the same embeddings, and on the same model."""

from __future__ import annotations

import numpy as np
import pytest
from fake_st_encoder import TableEncoder
from sentence_transformers.sentence_transformer.evaluation import (
    BinaryClassificationEvaluator as STBinaryClassificationEvaluator,
)

from kosim.evaluation.binary import BinaryClassificationEvaluator, average_precision, matthews_corrcoef

ALL = ["cosine", "dot", "euclidean", "manhattan"]


def make_data(n: int, seed: int, dim: int = 12):
    """Pairs whose similarity is loosely tied to the label; some pairs repeat, so that equal scores occur."""
    rng = np.random.default_rng(seed)
    texts = [f"s{i}" for i in range(2 * n)]
    table = {t: rng.standard_normal(dim) for t in texts}
    s1, s2, labels = [], [], []
    for i in range(n):
        a, b = texts[2 * i], texts[2 * i + 1]
        label = int(rng.random() < 0.4)
        if label:
            table[b] = table[a] + 0.9 * rng.standard_normal(dim)
        s1.append(a)
        s2.append(b)
        labels.append(label)
    for i in range(0, n, 7):  # repeated pairs: ties in every similarity
        s1.append(s1[i])
        s2.append(s2[i])
        labels.append(1 - labels[i] if i % 2 else labels[i])
    return s1, s2, labels, TableEncoder(table)


def assert_same(ours: dict, theirs: dict, tol: float = 1e-6) -> None:
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(float(value), abs=tol, rel=tol), key


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("names", [None, ["cosine"], ["manhattan"], ALL])
@pytest.mark.parametrize("name", ["", "dev"])
def test_matches_sentence_transformers(seed, names, name):
    s1, s2, labels, model = make_data(60, seed)
    ours = BinaryClassificationEvaluator(s1, s2, labels, name=name, similarity_fn_names=names)
    theirs = STBinaryClassificationEvaluator(s1, s2, labels, name=name, similarity_fn_names=names, write_csv=False)
    result = ours(model)
    assert_same(result, theirs(model))
    assert ours.primary_metric == theirs.primary_metric
    assert list(result) == ours.metric_keys


def test_model_similarity_and_truncate_dim():
    s1, s2, labels, model = make_data(40, 5)
    model.similarity_fn_name = "dot"
    ours = BinaryClassificationEvaluator(s1, s2, labels, truncate_dim=5)
    assert ours.primary_metric == "cosine_ap"  # before a call: cosine
    theirs = STBinaryClassificationEvaluator(s1, s2, labels, truncate_dim=5, write_csv=False)
    assert_same(ours(model), theirs(model))
    assert ours.primary_metric == theirs.primary_metric == "dot_ap"


def test_each_distinct_text_is_encoded_once():
    s1, s2, labels, model = make_data(20, 6)
    BinaryClassificationEvaluator(s1, s2, labels)(model)
    assert model.calls == [len(set(s1) | set(s2))]


def test_average_precision_and_mcc_against_scikit_learn():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    for _ in range(20):
        labels = rng.integers(0, 2, 50)
        scores = rng.integers(0, 10, 50).astype(np.float32)  # many ties
        assert average_precision(scores, labels) == pytest.approx(sklearn.average_precision_score(labels, scores))
        predicted = scores > 4
        assert matthews_corrcoef(labels, predicted) == pytest.approx(sklearn.matthews_corrcoef(labels, predicted))


def test_same_model_in_both_libraries(bert_dir):
    st = pytest.importorskip("sentence_transformers")
    from helpers import KOREAN

    from kosim.model import SentenceEncoder

    texts = KOREAN[:5] + KOREAN[6:]
    s1 = [texts[i % len(texts)] for i in range(14)]
    s2 = [texts[(3 * i + 1) % len(texts)] for i in range(14)]
    labels = [int((i * 5) % 3 == 0) for i in range(14)]
    st_model = st.SentenceTransformer(str(bert_dir), device="cpu")
    kosim_model = SentenceEncoder.load(bert_dir)
    theirs = STBinaryClassificationEvaluator(s1, s2, labels, similarity_fn_names=ALL, write_csv=False)(st_model)
    assert_same(BinaryClassificationEvaluator(s1, s2, labels, similarity_fn_names=ALL)(kosim_model), theirs, 1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"labels": [0, 2]}, ValueError, r"labels\[1\] must be 0 or 1"),
        ({"labels": [0]}, ValueError, "same length"),
        ({"write_csv": True}, ValueError, "write_csv"),
        ({"similarity_fn_names": ["cosinus"]}, ValueError, "cosinus"),
        ({"truncate_dim": 0}, ValueError, "truncate_dim"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = {"sentences1": ["a", "b"], "sentences2": ["c", "d"], "labels": [0, 1], **kwargs}
    with pytest.raises(error, match=match):
        BinaryClassificationEvaluator(**args)
