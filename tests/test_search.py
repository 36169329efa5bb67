"""kosim.search.semantic_search: chunked running top-k equals a brute-force cosine ranking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kosim.search import semantic_search


def brute_force(queries: np.ndarray, corpus: np.ndarray, top_k: int) -> list[list[tuple[int, float]]]:
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    c = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
    scores = q @ c.T
    out = []
    for row in scores:
        order = np.argsort(-row, kind="stable")[:top_k]
        out.append([(int(i), float(row[i])) for i in order])
    return out


def check_equal(got, want) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert [i for i, _ in g] == [i for i, _ in w]
        np.testing.assert_allclose([s for _, s in g], [s for _, s in w], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1000])
@pytest.mark.parametrize("query_chunk_size", [1, 5, 1024])
def test_matches_brute_force(chunk_size, query_chunk_size):
    rng = np.random.default_rng(0)
    queries, corpus = rng.normal(size=(13, 16)), rng.normal(size=(200, 16))
    got = semantic_search(queries, corpus, top_k=10, chunk_size=chunk_size, query_chunk_size=query_chunk_size)
    check_equal(got, brute_force(queries, corpus, 10))


def test_inputs_tensors_one_query_and_large_top_k():
    rng = np.random.default_rng(1)
    corpus = rng.normal(size=(5, 8)).astype(np.float32)
    query = rng.normal(size=8).astype(np.float32)
    got = semantic_search(torch.from_numpy(query), torch.from_numpy(corpus), top_k=50, chunk_size=2)
    assert len(got) == 1 and len(got[0]) == 5  # top_k larger than the corpus: every row, best first
    check_equal(got, brute_force(query[None], corpus, 5))
    assert all(isinstance(i, int) and isinstance(s, float) for i, s in got[0])


def test_errors():
    with pytest.raises(ValueError, match="top_k"):
        semantic_search(np.ones((1, 4)), np.ones((3, 4)), top_k=0)
    with pytest.raises(ValueError, match="dimension"):
        semantic_search(np.ones((1, 4)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="chunk_size"):
        semantic_search(np.ones((1, 4)), np.ones((3, 4)), chunk_size=0)
    with pytest.raises(ValueError, match=r"\[n, dim\]"):
        semantic_search(np.ones((1, 2, 4)), np.ones((3, 4)))
