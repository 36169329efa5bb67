"""kosim.utils.checks: the shared argument checks name the argument and the bad item."""

from __future__ import annotations

import numpy as np
import pytest

from kosim.utils.checks import check_batch_size, check_texts, check_truncate_dim


def test_check_texts_accepts_sequences_and_arrays_and_names_the_bad_item():
    assert check_texts(("가", "나")) == ["가", "나"]
    assert check_texts(np.array(["a", "b"], dtype=object)) == ["a", "b"]
    with pytest.raises(TypeError, match=r"queries\[1\] must be a str, got float"):
        check_texts(["a", 1.5], "queries")
    with pytest.raises(TypeError, match=r"^docs must be a list of str, got str$"):
        check_texts("abc", "docs")
    with pytest.raises(TypeError, match=r"^texts must be a str or a list of str, got bytes$"):
        check_texts(b"abc", single_ok=True)
    with pytest.raises(TypeError, match="got set"):
        check_texts({"a", "b"})  # no order to return the embeddings in


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "8", None])
def test_check_batch_size_refuses(bad):
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got"):
        check_batch_size(bad)


def test_check_truncate_dim():
    assert check_truncate_dim(None) is None and check_truncate_dim(8) == 8
    for bad in (0, False, 1.0):
        with pytest.raises(ValueError, match="truncate_dim must be a positive int or None"):
            check_truncate_dim(bad)
