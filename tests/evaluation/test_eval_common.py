"""What the evaluators share (kosim.evaluation.common): one texts check, and the metric keys each one exposes."""

from __future__ import annotations

import numpy as np
import pytest

from kosim.evaluation import EmbeddingSimilarityEvaluator, TripletEvaluator
from kosim.evaluation.common import check_texts, encode_columns


class RandomEncoder:
    """A fixed random vector per text, so every similarity gives distinct numbers."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.table: dict[str, np.ndarray] = {}

    def encode(self, texts, batch_size: int = 32) -> np.ndarray:
        for text in texts:
            self.table.setdefault(text, self.rng.standard_normal(6).astype(np.float32))
        return np.stack([self.table[t] for t in texts])


TEXTS = [f"문장 {i}" for i in range(9)]
FN_SETS = [None, ["dot"], ["cos_sim", "manhattan"], ["euclidean", "cosine", "dot"]]


@pytest.mark.parametrize("name", ["", "sts-dev"])
@pytest.mark.parametrize("fns", FN_SETS)
def test_metric_keys_are_exactly_what_a_call_returns(name, fns) -> None:
    pairs = EmbeddingSimilarityEvaluator(TEXTS[:4], TEXTS[4:8], [0.1, 0.9, 0.4, 0.6], name=name, similarity_fns=fns)
    triplets = TripletEvaluator(TEXTS[:3], TEXTS[3:6], TEXTS[6:9], name=name, similarity_fns=fns)
    for evaluator in (pairs, triplets):
        keys = evaluator.metric_keys
        assert list(evaluator(RandomEncoder())) == keys
        assert evaluator.primary_metric in keys
        if name:
            assert all(key.startswith(f"{name}_") for key in keys)


def test_metric_keys_follow_sentence_transformers_names() -> None:
    pairs = EmbeddingSimilarityEvaluator(["a", "b"], ["c", "d"], [0.0, 1.0], name="x", similarity_fns=["cosine", "dot"])
    assert pairs.metric_keys == [
        "x_pearson_cosine",
        "x_spearman_cosine",
        "x_pearson_dot",
        "x_spearman_dot",
        "x_pearson_max",
        "x_spearman_max",
    ]
    triplets = TripletEvaluator(["a"], ["b"], ["c"], similarity_fns=["dot"])
    assert triplets.metric_keys == ["dot_accuracy"]


def test_both_evaluators_check_texts_the_same_way() -> None:
    with pytest.raises(TypeError, match=r"sentences2\[1\] must be a str, got int"):
        EmbeddingSimilarityEvaluator(["a", "b"], ["c", 7], [0.0, 1.0])
    with pytest.raises(TypeError, match=r"negatives\[0\] must be a str, got NoneType"):
        TripletEvaluator(["a"], ["b"], [None])
    with pytest.raises(TypeError, match=r"texts\[2\] must be a str, got bytes"):
        check_texts(["a", "b", b"c"], "texts")
    assert check_texts(("a", "b"), "texts") == ["a", "b"]
    # a bare str was split into its characters (each a str) and evaluated as a list of one-letter sentences
    with pytest.raises(TypeError, match=r"sentences1 must be a list of str, got str"):
        EmbeddingSimilarityEvaluator("ab", ["c", "d"], [0.0, 1.0])


def test_encode_columns_encodes_each_distinct_text_once() -> None:
    class Counting(RandomEncoder):
        def encode(self, texts, batch_size: int = 32) -> np.ndarray:
            self.calls = [*getattr(self, "calls", []), list(texts)]
            return super().encode(texts, batch_size)

    model = Counting()
    first, second = encode_columns(model, [["a", "b", "a"], ["b", "c", "a"]], batch_size=2)
    assert model.calls == [["a", "b", "c"]]
    assert first.shape == second.shape == (3, 6)
    np.testing.assert_array_equal(first[0].numpy(), model.table["a"])
    np.testing.assert_array_equal(second[2].numpy(), model.table["a"])
    np.testing.assert_array_equal(second[0].numpy(), model.table["b"])


def test_show_progress_bar_reaches_a_kosim_model_as_progress(tmp_path):
    """The evaluators' show_progress_bar is forwarded under the name kosim's encode takes (it raised TypeError)."""
    from helpers import build_checkpoint

    from kosim.model import SentenceEncoder

    model = SentenceEncoder.load(build_checkpoint(tmp_path / "m", "bert"))
    seen = []
    encode = model.encode
    model.encode = lambda texts, progress=None, **kw: seen.append(progress) or encode(texts, progress=progress, **kw)
    evaluator = EmbeddingSimilarityEvaluator(
        ["가", "나", "다"], ["나", "다", "가"], [0.1, 0.5, 0.9], show_progress_bar=True
    )
    assert "spearman_cosine" in evaluator(model)
    assert seen == [True]
