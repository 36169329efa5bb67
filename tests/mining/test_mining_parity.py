"""mine_hard_negatives equals sentence-transformers' on the same embeddings (every option) and on the real MiniLM."""

from __future__ import annotations

import numpy as np
import pytest
from mining_doubles import HashEncoder, HashSentenceTransformer

from kosim.data import ColumnDataset, kornli_path
from kosim.mining import mine_hard_negatives

st_util = pytest.importorskip("sentence_transformers.util")
datasets = pytest.importorskip("datasets")


def kornli_rows(start: int, stop: int) -> dict[str, list[str]]:
    data = ColumnDataset.from_tsv(kornli_path(), columns=["sentence1", "sentence2", "gold_label"])
    picks = range(start, min(stop, len(data)))
    return {c: [data.column(c)[i] for i in picks] for c in data.column_names}


@pytest.fixture(scope="module")
def entailment() -> dict[str, list[str]]:
    """~130 (premise, entailed hypothesis) pairs: one positive per anchor."""
    rows = kornli_rows(0, 400)
    keep = [i for i, label in enumerate(rows["gold_label"]) if label == "entailment"]
    return {"anchor": [rows["sentence1"][i] for i in keep], "positive": [rows["sentence2"][i] for i in keep]}


@pytest.fixture(scope="module")
def all_hypotheses() -> dict[str, list[str]]:
    """240 (premise, hypothesis) rows over 80 premises: three positives per anchor, a duplicated row."""
    rows = kornli_rows(0, 240)
    premises, hypotheses = rows["sentence1"], rows["sentence2"]
    return {"premise": premises + premises[:1], "hypothesis": hypotheses + hypotheses[:1]}


@pytest.fixture(scope="module")
def extra_corpus(entailment) -> list[str]:
    """A separate corpus with duplicates and some of the positives in it."""
    other = kornli_rows(400, 700)["sentence2"]
    return other + other[:20] + entailment["positive"][:10]


def st_mine(data: dict, model, **kwargs) -> dict:
    found = st_util.mine_hard_negatives(datasets.Dataset.from_dict(data), model, verbose=False, **kwargs)
    return found.to_dict()


def assert_same(got: dict, want: dict, atol: float = 1e-6) -> None:
    """Same columns, same rows; text exactly, scores within ``atol``."""
    assert list(got) == list(want)
    for key, values in want.items():
        assert len(got[key]) == len(values), key
        if key in ("scores", "score"):
            for g, w in zip(got[key], values):
                np.testing.assert_allclose(g, w, rtol=0, atol=atol)
        else:
            assert got[key] == values, key


CASES = [
    {},
    {"num_negatives": 5, "range_min": 2, "range_max": 20},
    {"relative_margin": 0.05, "output_scores": True},
    {"relative_margin": 0.05, "num_negatives": 10, "output_format": "n-tuple", "output_scores": True},
    {"absolute_margin": 0.02, "max_score": 0.9, "min_score": 0.2, "num_negatives": 4},
    {"max_score": 0.7, "output_scores": True},
    {"min_score": 0.6, "num_negatives": 6, "output_format": "n-tuple"},
    {"output_format": "labeled-pair"},
    {"output_format": "labeled-pair", "output_scores": True, "relative_margin": 0.1},
    {"output_format": "labeled-list"},
    {"output_format": "labeled-list", "output_scores": True, "max_score": 0.75},
    {"include_positives": True, "num_negatives": 4, "output_scores": True},
    {"query_prompt": "질문: ", "corpus_prompt": "문서: ", "output_scores": True},
]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "defaults")
@pytest.mark.parametrize("corpus", [False, True], ids=["positives", "separate-corpus"])
def test_top_strategy_equals_sentence_transformers(entailment, extra_corpus, kwargs, corpus):
    extra = {"corpus": extra_corpus} if corpus else {}
    got = mine_hard_negatives(entailment, HashEncoder(), verbose=False, **extra, **kwargs)
    want = st_mine(entailment, HashSentenceTransformer(), **extra, **kwargs)
    assert len(want[next(iter(want))]) > 0
    assert_same(got, want)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"relative_margin": 0.05, "output_scores": True},
        {"output_format": "n-tuple", "num_negatives": 2, "output_scores": True},
        {"output_format": "labeled-pair", "absolute_margin": 0.0},
        {"output_format": "labeled-list", "output_scores": True, "range_min": 1},
    ],
)
def test_several_positives_per_anchor(all_hypotheses, kwargs):
    """Rows sharing an anchor are one query; none of its positives is its negative; the window grows with them."""
    got = mine_hard_negatives(all_hypotheses, HashEncoder(), verbose=False, **kwargs)
    want = st_mine(all_hypotheses, HashSentenceTransformer(), **kwargs)
    assert_same(got, want)


def test_model_prompts_apply_by_default(entailment, extra_corpus):
    prompts = {"query": "query: ", "document": "passage: ", "other": "기타: "}
    for kwargs in ({}, {"query_prompt_name": "other", "corpus_prompt_name": "query"}):
        got = mine_hard_negatives(entailment, HashEncoder(prompts), corpus=extra_corpus, verbose=False, **kwargs)
        want = st_mine(entailment, HashSentenceTransformer(prompts), corpus=extra_corpus, **kwargs)
        assert_same(got, want)
    plain = mine_hard_negatives(entailment, HashEncoder(), corpus=extra_corpus, verbose=False)
    assert plain["negative"] != got["negative"]  # the prompts changed the embeddings, hence the negatives


def test_column_names_and_column_dataset_input(all_hypotheses):
    data = ColumnDataset({"x": all_hypotheses["hypothesis"], **all_hypotheses})
    got = mine_hard_negatives(
        data, HashEncoder(), anchor_column_name="premise", positive_column_name="hypothesis", verbose=False
    )
    want = st_mine(
        {k: all_hypotheses[k] for k in ("premise", "hypothesis")}, HashSentenceTransformer(), output_scores=False
    )
    assert list(got) == ["premise", "hypothesis", "negative"]
    assert_same(got, want)


def test_each_distinct_text_is_encoded_once(all_hypotheses, extra_corpus):
    model = HashEncoder()
    mine_hard_negatives(all_hypotheses, model, corpus=extra_corpus + all_hypotheses["premise"][:5], verbose=False)
    encoded = [t for call in model.calls for t in call]
    wanted = set(all_hypotheses["premise"]) | set(all_hypotheses["hypothesis"]) | set(extra_corpus)
    assert len(encoded) == len(set(encoded)) and set(encoded) == wanted
    model = HashEncoder()  # different prompts: each side is encoded on its own
    mine_hard_negatives(all_hypotheses, model, query_prompt="q: ", verbose=False)
    sizes = sorted(len(call) for call in model.calls)
    assert sizes == sorted([len(set(all_hypotheses["premise"])), len(set(all_hypotheses["hypothesis"]))])


@pytest.mark.slow
def test_real_minilm_equals_sentence_transformers(minilm, tmp_path):
    """End to end on the real model (kosim's encoder vs sentence-transformers'); rows may swap only at near-ties."""
    import sentence_transformers as st

    from kosim.model import SentenceEncoder

    rows = kornli_rows(0, 120)
    keep = [i for i, label in enumerate(rows["gold_label"]) if label == "entailment"]
    data = {"anchor": [rows["sentence1"][i] for i in keep], "positive": [rows["sentence2"][i] for i in keep]}
    corpus = kornli_rows(120, 150)["sentence2"]
    ours, ref = SentenceEncoder.load(minilm), st.SentenceTransformer(str(minilm), device="cpu")
    for kwargs in (
        {"relative_margin": 0.05, "num_negatives": 3},
        {"output_format": "n-tuple", "range_min": 1, "num_negatives": 2},
    ):
        common = {"corpus": corpus, "output_scores": True, **kwargs}
        got = mine_hard_negatives(data, ours, verbose=False, cache_dir=tmp_path / "kosim", **common)
        want = st_mine(data, ref, cache_folder=str(tmp_path / "st"), **common)
        assert list(got) == list(want) and len(got["anchor"]) == len(want["anchor"]) > 0
        np.testing.assert_allclose(got["scores"], want["scores"], rtol=0, atol=1e-5)
        for key in want:
            if key == "scores":
                continue
            for i, (g, w) in enumerate(zip(got[key], want[key])):
                if g != w:  # a swap of two candidates whose scores are equal to float noise
                    j = 1 if key == "negative" else int(key.rsplit("_", 1)[-1]) if key.startswith("negative_") else 0
                    assert j > 0 and abs(got["scores"][i][j] - want["scores"][i][j]) < 1e-5, (key, i, g, w)
