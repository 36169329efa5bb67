"""TripletEvaluator against sentence-transformers 6.2 on KorNLI dev triplets with a fake encoder."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers.sentence_transformer.evaluation import TripletEvaluator as STTripletEvaluator

import kosim
from kosim.evaluation import TripletEvaluator

XNLI_DEV = Path(kosim.__file__).parent / "resources" / "kornlu" / "KorNLI" / "xnli.dev.ko.tsv"
DIM = 24
ALL = ["cosine", "euclidean", "manhattan", "dot"]


def load_triplets() -> tuple[list[str], list[str], list[str]]:
    """(premise, entailed hypothesis, contradicting hypothesis) for every premise that has both."""
    lines = XNLI_DEV.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["sentence1", "sentence2", "gold_label"]
    by_premise: dict[str, dict[str, str]] = defaultdict(dict)
    for line in lines[1:]:
        premise, hypothesis, label = line.split("\t")
        by_premise[premise].setdefault(label, hypothesis)
    anchors, positives, negatives = [], [], []
    for premise, hypotheses in by_premise.items():
        if "entailment" in hypotheses and "contradiction" in hypotheses:
            anchors.append(premise)
            positives.append(hypotheses["entailment"])
            negatives.append(hypotheses["contradiction"])
    return anchors, positives, negatives


class FakeEncoder:
    """Deterministic bag-of-characters embeddings; accepts any extra keyword arguments."""

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
        self.calls: list[int] = []

    def encode(self, texts, batch_size: int = 32, **kwargs) -> np.ndarray:
        self.calls.append(len(texts))
        return np.stack([self.table[t] for t in texts])

    encode_query = encode
    encode_document = encode


@pytest.fixture(scope="module")
def triplets():
    return load_triplets()


@pytest.mark.parametrize("name", ["xnli-dev", ""])
@pytest.mark.parametrize("margin", [0.0, 0.05])
def test_matches_sentence_transformers(triplets, name: str, margin: float) -> None:
    anchors, positives, negatives = triplets
    assert len(anchors) > 500
    model = FakeEncoder(anchors + positives + negatives)
    ours = TripletEvaluator(
        anchors, positives, negatives, name=name, margin=margin, similarity_fns=ALL, main_similarity="cosine"
    )
    st = STTripletEvaluator(
        anchors,
        positives,
        negatives,
        name=name,
        similarity_fn_names=ALL,
        main_similarity_function="cosine",
        margin=margin,
        write_csv=False,
    )
    ours_metrics, st_metrics = ours(model), st(model)
    assert list(ours_metrics) == list(st_metrics)
    for key, value in st_metrics.items():
        assert ours_metrics[key] == pytest.approx(value, abs=1e-7), key
    assert ours.primary_metric == st.primary_metric
    prefix = f"{name}_" if name else ""
    assert ours.primary_metric == f"{prefix}cosine_accuracy"
    assert all(0.0 < value < 1.0 for value in ours_metrics.values())


def test_single_similarity_and_default_st_call(triplets) -> None:
    anchors, positives, negatives = (x[:300] for x in triplets)
    model = FakeEncoder(anchors + positives + negatives)
    st = STTripletEvaluator(anchors, positives, negatives, name="nli", write_csv=False)
    st_metrics = st(model)
    ours = TripletEvaluator(anchors, positives, negatives, name="nli")
    ours_metrics = ours(model)
    assert list(ours_metrics) == list(st_metrics) == ["nli_cosine_accuracy"]
    assert (
        TripletEvaluator(anchors, positives, negatives, name="nli", similarity_fns=["cos_sim"])(model) == ours_metrics
    )
    assert ours_metrics["nli_cosine_accuracy"] == pytest.approx(st_metrics["nli_cosine_accuracy"], abs=1e-7)
    assert ours.primary_metric == st.primary_metric == "nli_cosine_accuracy"


def test_per_similarity_margins(triplets) -> None:
    anchors, positives, negatives = (x[:300] for x in triplets)
    model = FakeEncoder(anchors + positives + negatives)
    margin = {"cosine": 0.02, "dot": 5.0}
    ours = TripletEvaluator(anchors, positives, negatives, margin=margin, similarity_fns=ALL)(model)
    st_evaluator = STTripletEvaluator(
        anchors, positives, negatives, margin=margin, similarity_fn_names=ALL, write_csv=False
    )
    st = st_evaluator(model)
    for key, value in st.items():
        assert ours[key] == pytest.approx(value, abs=1e-7)


def test_encodes_unique_texts_once() -> None:
    class Counter:
        calls: list[list[str]] = []

        def encode(self, texts, batch_size):
            self.calls.append(list(texts))
            table = {"a": [1.0, 0.0], "b": [1.0, 0.0], "c": [0.0, 1.0], "d": [1.0, 0.0]}
            return np.array([table[t] for t in texts], dtype=np.float32)

    model = Counter()
    metrics = TripletEvaluator(["a", "a"], ["b", "c"], ["c", "d"], similarity_fns=["dot"])(model)
    assert model.calls == [["a"], ["b", "c", "d"]]  # anchors (queries), then positives and negatives (documents)
    assert metrics == {"dot_accuracy": 0.5}


def test_validation() -> None:
    with pytest.raises(ValueError, match="2, 2 and 1"):
        TripletEvaluator(["a", "b"], ["c", "d"], ["e"])
    with pytest.raises(ValueError, match="at least one"):
        TripletEvaluator([], [], [])
    with pytest.raises(ValueError, match="unknown similarity"):
        TripletEvaluator(["a"], ["b"], ["c"], similarity_fns=["hamming"])
    with pytest.raises(ValueError, match="unknown similarity"):
        TripletEvaluator(["a"], ["b"], ["c"], margin={"hamming": 1.0})
    with pytest.raises(ValueError, match="not among"):
        TripletEvaluator(["a"], ["b"], ["c"], similarity_fns=["dot"], main_similarity="cosine")
    evaluator = TripletEvaluator(["a"], ["b"], ["c"], name="t", similarity_fns=["euclidean", "dot"])
    assert evaluator.name == "t" and evaluator.primary_metric == "t_max_accuracy"  # sentence-transformers' rule
    evaluator = TripletEvaluator(["a"], ["b"], ["c"], name="t", main_similarity="euclidean")
    assert evaluator.similarity_fns == ["euclidean"] and evaluator.primary_metric == "t_euclidean_accuracy"


class _Prompted:
    """A model with query / document prompts: encode_query and encode_document give different vectors."""

    similarity_fn_name = "dot"

    class _CardData:
        def set_evaluation_metrics(self, *args, **kwargs) -> None:
            pass

    model_card_data = _CardData()

    def __init__(self):
        self.roles = []

    def _vectors(self, texts, shift):
        return np.array([[len(t) + shift, t.count("a") * 1.0, 1.0] for t in texts], dtype=np.float32)

    def encode(self, texts, batch_size=32, **kwargs):
        self.roles.append("plain")
        return self._vectors(texts, 0.0)

    def encode_query(self, texts, batch_size=32, **kwargs):
        self.roles.append("query")
        return self._vectors(texts, 3.0)

    def encode_document(self, texts, batch_size=32, **kwargs):
        self.roles.append("document")
        return self._vectors(texts, -1.0)


def test_query_and_document_roles_and_the_models_similarity_as_sentence_transformers() -> None:
    anchors, positives, negatives = ["a", "aa", "bbb", "ab"], ["aaa", "b", "ab", "a"], ["bb", "aab", "b", "bbbb"]
    theirs, ours = _Prompted(), _Prompted()
    st_metrics = STTripletEvaluator(anchors, positives, negatives, name="p", write_csv=False)(theirs)
    evaluator = TripletEvaluator(anchors, positives, negatives, name="p")
    assert evaluator(ours) == pytest.approx(st_metrics, abs=1e-7)
    assert list(st_metrics) == ["p_dot_accuracy"] and evaluator.primary_metric == "p_dot_accuracy"
    assert set(ours.roles) == set(theirs.roles) == {"query", "document"}
