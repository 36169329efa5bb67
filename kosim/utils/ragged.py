"""Ragged arrays stored flat: row ``i`` of ``(flat, offsets)`` is ``flat[offsets[i]:offsets[i + 1]]``.

One home for the two operations the data layer (tokenize once, collate) and the model layer (encode) need:
offsets from lengths, and copying a selection of rows into a new flat array without a Python loop over rows.
numpy only, so it imports nothing heavy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gather", "offsets_from_lengths"]


def offsets_from_lengths(lengths: np.ndarray) -> np.ndarray:
    """``int64`` offsets ``[0, l0, l0 + l1, ...]`` (``len(lengths) + 1`` entries) of rows with these lengths."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def gather(
    flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray, chunk_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Copy rows ``rows`` (any order, repeats allowed) of ``(flat, offsets)`` into a new ``(flat, offsets)`` pair.

    Args:
        flat: ``[total]`` values of all rows, concatenated (any dtype; the result keeps it).
        offsets: ``[n + 1]`` ``int64`` row boundaries into ``flat``.
        rows: ``[k]`` row indices to copy.
        chunk_rows: copy this many rows per vectorised step, to bound the ``int64`` index scratch for very large
            selections (``None``: all rows in one step).

    Returns:
        ``([sum of selected lengths]`` values, ``[k + 1]`` offsets); the selected lengths are ``np.diff`` of them.
    """
    rows = np.asarray(rows, dtype=np.int64)
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    new_offsets = offsets_from_lengths(lengths)
    step = len(rows) if chunk_rows is None else max(int(chunk_rows), 1)
    if step >= len(rows):
        return flat[_sources(starts, lengths, new_offsets, 0, len(rows))], new_offsets
    out = np.empty(int(new_offsets[-1]), dtype=flat.dtype)
    for lo in range(0, len(rows), step):
        hi = min(lo + step, len(rows))
        a, b = int(new_offsets[lo]), int(new_offsets[hi])
        if a != b:
            out[a:b] = flat[_sources(starts, lengths, new_offsets, lo, hi)]
    return out, new_offsets


def _sources(starts: np.ndarray, lengths: np.ndarray, new_offsets: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Source index in ``flat`` of every output value of rows ``lo:hi``: its row's start plus its place in the row."""
    a, b = int(new_offsets[lo]), int(new_offsets[hi])
    return np.repeat(starts[lo:hi] - new_offsets[lo:hi], lengths[lo:hi]) + np.arange(a, b, dtype=np.int64)
