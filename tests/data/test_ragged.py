"""kosim.utils.ragged: the one ragged-row gather shared by tokenize-once, collate and encode."""

from __future__ import annotations

import numpy as np
import pytest

from kosim.utils.ragged import gather, offsets_from_lengths


def _rows(flat: np.ndarray, offsets: np.ndarray) -> list[list[int]]:
    return [flat[offsets[i] : offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]


def test_offsets_from_lengths():
    assert offsets_from_lengths(np.array([2, 0, 3])).tolist() == [0, 2, 2, 5]
    assert offsets_from_lengths(np.zeros(0, dtype=np.int64)).tolist() == [0]


@pytest.mark.parametrize("chunk_rows", [None, 1, 3, 1000])
def test_gather_matches_a_python_reference(chunk_rows):
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 6, size=40)
    offsets = offsets_from_lengths(lengths)
    flat = rng.integers(0, 1000, size=int(offsets[-1])).astype(np.int32)
    rows = rng.integers(0, 40, size=25)  # any order, with repeats
    out, new_offsets = gather(flat, offsets, rows, chunk_rows=chunk_rows)
    reference = _rows(flat, offsets)
    assert out.dtype == np.int32 and new_offsets.dtype == np.int64
    assert _rows(out, new_offsets) == [reference[r] for r in rows.tolist()]


def test_gather_no_rows():
    out, new_offsets = gather(np.arange(5), np.array([0, 2, 5]), np.zeros(0, dtype=np.int64))
    assert out.size == 0 and new_offsets.tolist() == [0]
