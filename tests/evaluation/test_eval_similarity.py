"""EmbeddingSimilarityEvaluator against sentence-transformers 6.2 on KorSTS dev with a fake encoder."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator as STEvaluator

import kosim
from kosim.evaluation import EmbeddingSimilarityEvaluator

STS_DEV = Path(kosim.__file__).parent / "resources" / "kornlu" / "KorSTS" / "sts-dev.tsv"
DIM = 24
ALL = ["cosine", "euclidean", "manhattan", "dot"]


def load_sts_dev() -> tuple[list[str], list[str], list[float]]:
    lines = STS_DEV.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["genre", "filename", "year", "id", "score", "sentence1", "sentence2"]
    sentences1, sentences2, scores = [], [], []
    for line in lines[1:]:
        fields = line.split("\t")
        scores.append(float(fields[4]) / 5.0)
        sentences1.append(fields[5])
        sentences2.append(fields[6])
    return sentences1, sentences2, scores


class FakeEncoder:
    """Deterministic bag-of-characters embeddings: similar sentences get similar vectors, so correlations are real.

    Accepts (and records) any extra keyword arguments, as sentence-transformers' evaluators pass several.
    """

    similarity_fn_name = "cosine"

    class _CardData:
        def set_evaluation_metrics(self, *args, **kwargs) -> None:
            pass

    def __init__(self, texts: list[str], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        chars = sorted({c for t in texts for c in t})
        char_vectors = {c: rng.standard_normal(DIM) for c in chars}
        self.table = {
            t: (sum(char_vectors[c] for c in t) + 2.0 * rng.standard_normal(DIM) + 3.0).astype(np.float32)
            for t in sorted(set(texts))
        }
        self.model_card_data = self._CardData()
        self.calls: list[tuple[int, dict]] = []

    def encode(self, texts, batch_size: int = 32, **kwargs) -> np.ndarray:
        self.calls.append((len(texts), {"batch_size": batch_size, **kwargs}))
        return np.stack([self.table[t] for t in texts])

    encode_query = encode
    encode_document = encode


@pytest.fixture(scope="module")
def sts_dev():
    return load_sts_dev()


@pytest.mark.parametrize("name", ["sts-dev", ""])
def test_matches_sentence_transformers(sts_dev, name: str) -> None:
    sentences1, sentences2, scores = sts_dev
    model = FakeEncoder(sentences1 + sentences2)
    ours = EmbeddingSimilarityEvaluator(
        sentences1, sentences2, scores, name=name, similarity_fns=ALL, main_similarity="cosine"
    )
    st = STEvaluator(
        sentences1,
        sentences2,
        scores,
        name=name,
        similarity_fn_names=["cosine", "euclidean", "manhattan", "dot"],
        main_similarity="cosine",
        write_csv=False,
    )
    ours_metrics = ours(model)
    st_metrics = st(model)
    assert list(ours_metrics) == list(st_metrics)
    for key, value in st_metrics.items():
        assert ours_metrics[key] == pytest.approx(value, abs=1e-8), key
    assert ours.primary_metric == st.primary_metric
    prefix = f"{name}_" if name else ""
    assert ours.primary_metric == f"{prefix}spearman_cosine"
    assert ours_metrics[f"{prefix}spearman_cosine"] > 0.3  # the fake encoder is informative
    assert all(isinstance(v, float) for v in ours_metrics.values())


def test_default_sentence_transformers_call_gives_the_same_cosine_numbers(sts_dev) -> None:
    """Both libraries' defaults: only the model's similarity, the same keys, values and primary metric."""
    sentences1, sentences2, scores = sts_dev
    model = FakeEncoder(sentences1 + sentences2)
    st = STEvaluator(sentences1, sentences2, scores, name="sts-dev", write_csv=False)
    st_metrics = st(model)
    ours = EmbeddingSimilarityEvaluator(sentences1, sentences2, scores, name="sts-dev")
    ours_metrics = ours(model)
    assert list(st_metrics) == list(ours_metrics) == ["sts-dev_pearson_cosine", "sts-dev_spearman_cosine"]
    for key, value in st_metrics.items():
        assert ours_metrics[key] == pytest.approx(value, abs=1e-8)
    assert st.primary_metric == ours.primary_metric == "sts-dev_spearman_cosine"


@pytest.mark.parametrize("fns", [["dot"], ["manhattan", "cos_sim"]])
def test_subsets_of_similarities(sts_dev, fns: list[str]) -> None:
    sentences1, sentences2, scores = [x[:200] for x in sts_dev]
    model = FakeEncoder(sentences1 + sentences2)
    ours = EmbeddingSimilarityEvaluator(sentences1, sentences2, scores, name="x", similarity_fns=fns)
    canonical = ["cosine" if f == "cos_sim" else f for f in fns]
    st = STEvaluator(
        sentences1,
        sentences2,
        scores,
        name="x",
        similarity_fn_names=canonical,
        write_csv=False,
    )
    ours_metrics, st_metrics = ours(model), st(model)
    assert list(ours_metrics) == list(st_metrics)
    for key, value in st_metrics.items():
        assert ours_metrics[key] == pytest.approx(value, abs=1e-8)
    assert ours.primary_metric == st.primary_metric


def test_encodes_each_unique_text_once_with_batch_size(sts_dev) -> None:
    sentences1, sentences2, scores = sts_dev
    model = FakeEncoder(sentences1 + sentences2)
    EmbeddingSimilarityEvaluator(sentences1, sentences2, scores, batch_size=7)(model)
    assert model.calls == [(len(set(sentences1 + sentences2)), {"batch_size": 7})]
    EmbeddingSimilarityEvaluator(sentences1, sentences2, scores, show_progress_bar=False)(model)
    assert model.calls[-1][1] == {"batch_size": 16, "show_progress_bar": False}


def test_minimal_encoder_without_kwargs() -> None:
    class Minimal:
        def encode(self, texts, batch_size):
            return np.array([[len(t), 1.0 + t.count("a")] for t in texts], dtype=np.float32)

    evaluator = EmbeddingSimilarityEvaluator(["a", "bb", "aaa"], ["ab", "b", "a"], [0.1, 0.5, 0.9])
    metrics = evaluator(Minimal())
    assert list(metrics) == ["pearson_cosine", "spearman_cosine"]  # a model without similarity_fn_name: cosine
    assert all(math.isfinite(v) for v in metrics.values())


def test_validation() -> None:
    with pytest.raises(ValueError, match="3, 2 and 3"):
        EmbeddingSimilarityEvaluator(["a", "b", "c"], ["a", "b"], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="index 1"):
        EmbeddingSimilarityEvaluator(["a", "b", "c"], ["a", "b", "c"], [0.1, float("nan"), 0.3])
    with pytest.raises(ValueError, match="index 2"):
        EmbeddingSimilarityEvaluator(["a", "b", "c"], ["a", "b", "c"], [0.1, 0.2, float("-inf")])
    with pytest.raises(ValueError, match="at least 2"):
        EmbeddingSimilarityEvaluator(["a"], ["b"], [0.5])
    with pytest.raises(ValueError, match="unknown similarity"):
        EmbeddingSimilarityEvaluator(["a", "b"], ["a", "b"], [0.1, 0.2], similarity_fns=["jaccard"])
    with pytest.raises(ValueError, match="batch_size"):
        EmbeddingSimilarityEvaluator(["a", "b"], ["a", "b"], [0.1, 0.2], batch_size=0)
    with pytest.raises(TypeError, match=r"sentences2\[1\]"):
        EmbeddingSimilarityEvaluator(["a", "b"], ["a", None], [0.1, 0.2])

    class WrongShape:
        def encode(self, texts, batch_size):
            return np.zeros((len(texts) + 1, 3), dtype=np.float32)

    with pytest.raises(ValueError, match="model.encode returned shape"):
        EmbeddingSimilarityEvaluator(["a", "b"], ["c", "d"], [0.1, 0.2])(WrongShape())


def test_name_and_primary_metric_attributes() -> None:
    evaluator = EmbeddingSimilarityEvaluator(["a", "b"], ["c", "d"], [0.1, 0.2], name="sts-dev")
    assert evaluator.name == "sts-dev"
    assert evaluator.primary_metric == "sts-dev_spearman_cosine"
    only_dot = EmbeddingSimilarityEvaluator(["a", "b"], ["c", "d"], [0.1, 0.2], similarity_fns=["dot"])
    assert only_dot.primary_metric == "spearman_dot"


def test_the_models_similarity_and_the_primary_metric_rules(sts_dev) -> None:
    """sentence-transformers' rules: the model's similarity by default, [main] when only main is given,
    spearman_max with several similarities and no main."""
    sentences1, sentences2, scores = [x[:100] for x in sts_dev]
    model = FakeEncoder(sentences1 + sentences2)
    model.similarity_fn_name = "dot"
    for kwargs in ({}, {"main_similarity": "manhattan"}, {"similarity_fns": ["cosine", "dot"]}):
        st_kwargs = {"similarity_fn_names": kwargs["similarity_fns"]} if "similarity_fns" in kwargs else kwargs
        ours = EmbeddingSimilarityEvaluator(sentences1, sentences2, scores, name="d", **kwargs)
        st = STEvaluator(sentences1, sentences2, scores, name="d", write_csv=False, **st_kwargs)
        ours_metrics, st_metrics = ours(model), st(model)
        assert list(ours_metrics) == list(st_metrics), kwargs
        assert ours.primary_metric == st.primary_metric, kwargs
        assert ours.metric_keys == list(st_metrics)
    assert ours.primary_metric == "d_spearman_max"
    truncated = EmbeddingSimilarityEvaluator(sentences1, sentences2, scores, truncate_dim=5)(model)
    st_truncated = STEvaluator(sentences1, sentences2, scores, truncate_dim=5, write_csv=False)
    assert truncated == pytest.approx(st_truncated(_Truncating(model, 5)), abs=1e-8)


class _Truncating:
    """sentence-transformers passes truncate_dim to encode; a fake model has to apply it."""

    def __init__(self, model, dim):
        self.model, self.dim, self.similarity_fn_name = model, dim, model.similarity_fn_name
        self.model_card_data = model.model_card_data

    def encode(self, texts, truncate_dim=None, **kwargs):
        return self.model.encode(texts, **kwargs)[:, : truncate_dim or None]
