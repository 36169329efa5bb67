"""sentence_transformers.util vs kosim.st.util on the same inputs: equal results."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import KOREAN

st = pytest.importorskip("sentence_transformers")
from sentence_transformers import util as st_util  # noqa: E402

from kosim.st import util  # noqa: E402


def _random(n, dim=16, seed=0):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["cos_sim", "dot_score", "pairwise_cos_sim", "pairwise_dot_score"])
def test_similarity_functions(name):
    a, b = _random(5), _random(5, seed=1)
    torch.testing.assert_close(getattr(util, name)(a, b), getattr(st_util, name)(a, b))
    torch.testing.assert_close(getattr(util, name)(a.numpy(), b.numpy()), getattr(st_util, name)(a.numpy(), b.numpy()))


@pytest.mark.parametrize("score", ["cos_sim", "dot_score"])
def test_semantic_search(score):
    queries, corpus = _random(7), _random(50, seed=1)
    kwargs = {"top_k": 5, "corpus_chunk_size": 16, "query_chunk_size": 3}
    ours = util.semantic_search(queries, corpus, score_function=getattr(util, score), **kwargs)
    theirs = st_util.semantic_search(queries, corpus, score_function=getattr(st_util, score), **kwargs)
    assert [[h["corpus_id"] for h in row] for row in ours] == [[h["corpus_id"] for h in row] for row in theirs]
    np.testing.assert_allclose(
        [[h["score"] for h in row] for row in ours], [[h["score"] for h in row] for row in theirs], atol=1e-5
    )
    assert all(isinstance(h["corpus_id"], int) and isinstance(h["score"], float) for row in ours for h in row)


def test_semantic_search_refuses_other_score_functions():
    with pytest.raises(ValueError, match="score_function"):
        util.semantic_search(_random(2), _random(4), score_function=lambda a, b: a @ b.T)


def test_paraphrase_mining(models):
    theirs, ours = models
    texts = KOREAN + [t + " 그리고 " + u for t, u in zip(KOREAN, KOREAN[1:])]  # distinct texts: no tied scores
    a = st_util.paraphrase_mining(theirs, texts, top_k=4, max_pairs=20)
    b = util.paraphrase_mining(ours, texts, top_k=4, max_pairs=20)
    assert len(a) == len(b)
    assert {(i, j) for _, i, j in a} == {(i, j) for _, i, j in b}
    np.testing.assert_allclose([s for s, _, _ in a], [s for s, _, _ in b], atol=1e-5)


def test_community_detection():
    centres = _random(4, seed=3) * 5
    points = torch.cat([centres[i] + 0.3 * _random(6 + i, seed=10 + i) for i in range(4)] + [_random(5, seed=99) * 5])
    points = points[torch.randperm(len(points), generator=torch.Generator().manual_seed(0))]
    for threshold, size in ((0.9, 3), (0.8, 5), (0.99, 2)):
        ours = util.community_detection(points, threshold=threshold, min_community_size=size, batch_size=7)
        theirs = st_util.community_detection(points, threshold=threshold, min_community_size=size, batch_size=7)
        assert [c[0] for c in ours] == [c[0] for c in theirs]
        assert [sorted(c) for c in ours] == [sorted(c) for c in theirs]
    assert util.community_detection(points[:2], min_community_size=3) == []


def test_quantize_embeddings():
    pytest.importorskip("kosim.quantization", reason="kosim.quantization is not in this kosim version yet")
    emb = _random(20).numpy()
    for precision in ("int8", "uint8", "binary", "ubinary"):
        np.testing.assert_array_equal(
            util.quantize_embeddings(emb, precision), st_util.quantize_embeddings(emb, precision)
        )


def test_mine_hard_negatives_on_a_datasets_dataset(models):
    datasets = pytest.importorskip("datasets")
    theirs, ours = models
    anchors = KOREAN + ["고양이가 잔다.", "개가 짖는다."]
    positives = [a[::-1] for a in anchors]
    data = datasets.Dataset.from_dict({"anchor": anchors, "positive": positives})
    kwargs = {"num_negatives": 2, "range_max": 6, "batch_size": 4, "verbose": False}
    a = st_util.mine_hard_negatives(data, theirs, **kwargs)
    b = util.mine_hard_negatives(data, ours, **kwargs)
    assert isinstance(b, datasets.Dataset)
    assert b.column_names == a.column_names
    assert b.to_dict() == a.to_dict()
    pooled = util.mine_hard_negatives(data, ours, use_multi_process=["cpu", "cpu"], **kwargs)
    assert pooled.to_dict() == a.to_dict()


@pytest.mark.parametrize(
    "options",
    [
        {"num_negatives": 3, "output_format": "n-tuple", "output_scores": True},
        {"num_negatives": 2, "relative_margin": 0.05, "range_min": 1},
        {"num_negatives": 2, "absolute_margin": 0.0, "output_format": "labeled-pair"},
        {"num_negatives": 2, "max_score": 0.99, "min_score": -1.0, "output_format": "labeled-list"},
        {"num_negatives": 2, "query_prompt_name": "query", "corpus_prompt_name": "document"},
    ],
)
def test_mine_hard_negatives_options_match(models, options):
    datasets = pytest.importorskip("datasets")
    theirs, ours = models
    anchors = KOREAN + ["고양이가 잔다.", "개가 짖는다."]
    positives = [a[::-1] for a in anchors]
    corpus = [t + " 그리고 " + u for t, u in zip(KOREAN, KOREAN[2:])]
    data = datasets.Dataset.from_dict({"anchor": anchors, "positive": positives})
    kwargs = {"batch_size": 4, "verbose": False, "corpus": corpus, "range_max": 8, **options}
    a = st_util.mine_hard_negatives(data, theirs, **kwargs).to_dict()
    b = util.mine_hard_negatives(data, ours, **kwargs).to_dict()
    assert list(b) == list(a)
    for column in a:
        if column in ("scores", "score"):
            np.testing.assert_allclose(
                np.asarray(b[column], dtype=float), np.asarray(a[column], dtype=float), atol=1e-5
            )
        else:
            assert b[column] == a[column], column
