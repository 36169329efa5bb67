"""ParaphraseMiningEvaluator (and the mining under it) against sentence-transformers 6.2 on the same embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fake_st_encoder import TableEncoder
from sentence_transformers import util as st_util
from sentence_transformers.sentence_transformer.evaluation import (
    ParaphraseMiningEvaluator as STParaphraseMiningEvaluator,
)

from kosim.evaluation.paraphrase import ParaphraseMiningEvaluator, duplicate_pairs, mine_paraphrases


def make_corpus(n_clusters: int, seed: int, dim: int = 16):
    """Clusters of 1-4 paraphrases around a centre; ids are ints or strs; the duplicates list names only a chain
    through each cluster (so the transitive closure adds pairs) and one pair with an unknown id."""
    rng = np.random.default_rng(seed)
    table, sentences, duplicates = {}, {}, []
    for c in range(n_clusters):
        centre = rng.standard_normal(dim)
        members = []
        for m in range(int(rng.integers(1, 5))):
            sid, text = f"q{c}_{m}", f"cluster {c} member {m}"
            table[text] = centre + 0.6 * rng.standard_normal(dim)
            sentences[sid] = text
            members.append(sid)
        duplicates += list(zip(members, members[1:]))
    duplicates.append(("q0_0", "not-an-id"))
    return sentences, duplicates, TableEncoder(table)


def assert_same(ours: dict, theirs: dict, tol: float = 1e-6) -> None:
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(float(value), abs=tol, rel=tol), key


CONFIGS = [
    {},
    {"add_transitive_closure": True},
    {"top_k": 2, "max_pairs": 30, "add_transitive_closure": True},
    {"top_k": 3, "query_chunk_size": 7, "corpus_chunk_size": 11, "name": "dev"},
    {"max_pairs": 15, "truncate_dim": 6},
]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_sentence_transformers(config, seed):
    sentences, duplicates, model = make_corpus(25, seed)
    ours = ParaphraseMiningEvaluator(sentences, duplicates, **config)
    theirs = STParaphraseMiningEvaluator(sentences, duplicates, write_csv=False, **config)
    result = ours(model)
    assert_same(result, theirs(model))
    assert ours.total_num_duplicates == theirs.total_num_duplicates
    assert ours.primary_metric == theirs.primary_metric and list(result) == ours.metric_keys
    assert 0 < result[ours.primary_metric] < 1


def test_duplicates_dict_matches_sentence_transformers():
    sentences, duplicates, model = make_corpus(15, 3)
    as_dict: dict = {}
    for a, b in duplicates:
        as_dict.setdefault(a, {})[b] = True  # one direction only
    ours = ParaphraseMiningEvaluator(sentences, duplicates_dict=as_dict)
    from collections import defaultdict

    st_dict = defaultdict(lambda: defaultdict(bool), {k: defaultdict(bool, v) for k, v in as_dict.items()})
    theirs = STParaphraseMiningEvaluator(sentences, duplicates_dict=st_dict, write_csv=False)
    assert_same(ours(model), theirs(model))


@pytest.mark.parametrize(
    ("top_k", "max_pairs", "chunks"), [(100, 500_000, (5000, 100_000)), (3, 20, (4, 9)), (1, 1000, (3, 3))]
)
def test_mined_pairs_match_paraphrase_mining(top_k, max_pairs, chunks):
    rng = np.random.default_rng(top_k)
    embeddings = torch.from_numpy(rng.standard_normal((40, 8)).astype(np.float32))
    ours = mine_paraphrases(embeddings, top_k, max_pairs, *chunks)

    class Precomputed:
        def encode(self, sentences, **kwargs):
            return embeddings

    theirs = st_util.paraphrase_mining(
        Precomputed(),
        list(range(40)),
        top_k=top_k,
        max_pairs=max_pairs,
        query_chunk_size=chunks[0],
        corpus_chunk_size=chunks[1],
    )
    assert [(i, j) for _, i, j in ours] == [(i, j) for _, i, j in theirs]
    np.testing.assert_allclose([s for s, _, _ in ours], [s for s, _, _ in theirs], rtol=1e-6, atol=1e-6)


def test_transitive_closure():
    pairs = duplicate_pairs(["a", "b", "c", "d", "e"], [("a", "b"), ("c", "b"), ("d", "e")], None, True)
    assert pairs == {frozenset(p) for p in [("a", "b"), ("a", "c"), ("b", "c"), ("d", "e")]}
    assert duplicate_pairs(["a", "b", "c"], [("a", "b"), ("c", "b")], None, False) == {
        frozenset(("a", "b")),
        frozenset(("b", "c")),
    }


def test_no_duplicates_gives_zeros():
    sentences, _, model = make_corpus(5, 4)
    result = ParaphraseMiningEvaluator(sentences)(model)
    assert result == dict.fromkeys(["average_precision", "f1", "precision", "recall", "threshold"], 0.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"top_k": 0}, ValueError, "top_k"),
        ({"max_pairs": 1.5}, ValueError, "max_pairs"),
        ({"write_csv": True}, ValueError, "write_csv"),
        ({"sentences_map": ["a", "b"]}, TypeError, "mapping"),
        ({"sentences_map": {1: "a", 2: None}}, TypeError, "must be a str"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = {"sentences_map": {1: "a", 2: "b"}, **kwargs}
    with pytest.raises(error, match=match):
        ParaphraseMiningEvaluator(**args)
