"""Multi-process encode the sentence-transformers way (start_multi_process_pool, encode(pool=), a device list,
the deprecated encode_multi_process), through sentence_transformers and through kosim.st: equal embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import KOREAN

st = pytest.importorskip("sentence_transformers")

TEXTS = [t * (1 + i % 3) for i, t in enumerate(KOREAN * 2)]


def test_pool_and_device_list_match_sentence_transformers(models):
    theirs, ours = models
    their_pool = theirs.start_multi_process_pool(["cpu"])
    try:
        expected = theirs.encode(TEXTS, pool=their_pool, chunk_size=3, normalize_embeddings=True)
    finally:
        theirs.stop_multi_process_pool(their_pool)
    np.testing.assert_allclose(expected, theirs.encode(TEXTS, normalize_embeddings=True), atol=1e-6)

    pool = ours.start_multi_process_pool(["cpu", "cpu"])
    try:
        got = ours.encode(TEXTS, pool=pool, chunk_size=3, normalize_embeddings=True)
        with pytest.warns(DeprecationWarning, match="encode_multi_process"):
            legacy = ours.encode_multi_process(TEXTS, pool, prompt_name="query", batch_size=4)
        query = ours.encode(TEXTS, pool=pool, prompt_name="query", convert_to_tensor=True)
    finally:
        ours.stop_multi_process_pool(pool)
    assert isinstance(got, np.ndarray) and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(legacy, theirs.encode(TEXTS, prompt_name="query"), atol=1e-5, rtol=0)
    np.testing.assert_allclose(query.numpy(), legacy, atol=1e-6, rtol=0)
    assert pool.closed

    by_list = ours.encode(TEXTS[:5], device=["cpu", "cpu"], precision="int8")
    np.testing.assert_array_equal(by_list, ours.encode(TEXTS[:5], precision="int8"))
