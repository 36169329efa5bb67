"""kosim.search: chunked running top-k (and its two-stage row top-k) equals a brute-force ranking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kosim.search import row_topk, semantic_search, topk_search


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


@pytest.mark.parametrize("k", [1, 3, 20])
@pytest.mark.parametrize("m", [2560, 3001, 5000])
def test_row_topk_two_stage_equals_a_sort(k, m):
    # wide enough rows for the grouped first stage (k * 32 * 4 <= m); m not a multiple of 32 covers the tail
    scores = torch.from_numpy(np.random.default_rng(m + k).normal(size=(9, m)).astype(np.float32))
    values, index = row_topk(scores, k)
    want = -np.sort(-scores.numpy(), axis=1)[:, :k]
    np.testing.assert_array_equal(values.numpy(), want)
    np.testing.assert_array_equal(scores.gather(1, index).numpy(), want)  # the indices point at those scores
    # the best score planted in the tail columns is found
    scores[:, -1] = 10.0
    values, index = row_topk(scores, k)
    assert torch.all(values[:, 0] == 10.0) and torch.all(index[:, 0] == m - 1)


def test_row_topk_ties_give_topk_values_and_distinct_indices():
    # integer scores: many exact ties across groups; values are topk's, indices distinct and pointing at them
    scores = torch.from_numpy(np.random.default_rng(3).integers(0, 50, size=(6, 4096)).astype(np.float32))
    values, index = row_topk(scores, 25)
    torch.testing.assert_close(values, scores.topk(25, dim=1).values, rtol=0, atol=0)
    torch.testing.assert_close(scores.gather(1, index), values, rtol=0, atol=0)
    assert all(len(set(row)) == 25 for row in index.tolist())


@pytest.mark.parametrize("chunk_size", [1000, 2999, 50_000])
def test_topk_search_wide_chunks_match_brute_force(chunk_size):
    # chunks wide enough for the two-stage row top-k, with query chunks of unequal size sharing the score buffer
    rng = np.random.default_rng(5)
    queries, corpus = rng.normal(size=(37, 24)), rng.normal(size=(3000, 24))
    scores, index = topk_search(queries, corpus, top_k=5, chunk_size=chunk_size, query_chunk_size=16)
    want = brute_force(queries, corpus, 5)
    got = [list(zip(i, s)) for i, s in zip(index.tolist(), scores.tolist())]
    check_equal(got, want)
