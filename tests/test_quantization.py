"""kosim.quantization against sentence-transformers' quantize_embeddings, bit for bit on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kosim.quantization import PRECISIONS, quantize_embeddings

st_quant = pytest.importorskip("sentence_transformers.util.quantization")

SCALAR = ("int8", "uint8")


def _same(ours, ref) -> None:
    if isinstance(ref, list):
        assert isinstance(ours, list) and len(ours) == len(ref)
        for a, b in zip(ours, ref):
            _same(a, b)
        return
    assert isinstance(ours, np.ndarray)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    assert np.array_equal(ours, ref)


def _embeddings(seed: int, n: int = 64, dim: int = 37, dtype=np.float32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(dtype)
    x[:, 3] = 0.25  # a constant dimension: zero range
    x[: n // 2, 5] = 0.0  # exact zeros: the binary threshold is `> 0`
    return x


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matrix_equals_sentence_transformers(precision, dtype):
    x = _embeddings(0, dtype=dtype)
    _same(quantize_embeddings(x, precision), st_quant.quantize_embeddings(x, precision))


@pytest.mark.parametrize("precision", SCALAR)
def test_ranges_and_calibration_equal_sentence_transformers(precision):
    x, calib = _embeddings(1, n=16), _embeddings(2, n=200)
    ranges = np.stack([calib.min(0) + 0.1, calib.max(0) - 0.1])  # values outside the ranges get clipped
    for kwargs in ({"ranges": ranges}, {"calibration_embeddings": calib}, {"ranges": ranges.astype(np.float64)}):
        _same(quantize_embeddings(x, precision, **kwargs), st_quant.quantize_embeddings(x, precision, **kwargs))
    # one embedding with calibration data is fine; without it, both refuse
    one = x[:1]
    _same(
        quantize_embeddings(one, precision, calibration_embeddings=calib),
        st_quant.quantize_embeddings(one, precision, calibration_embeddings=calib),
    )
    with pytest.raises(ValueError, match="more than one embedding"):
        quantize_embeddings(one, precision)
    with pytest.raises(ValueError):
        st_quant.quantize_embeddings(one, precision)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_tensors_lists_and_token_matrices(precision):
    x = _embeddings(3, n=12)
    ref = st_quant.quantize_embeddings(x, precision)
    _same(quantize_embeddings(torch.from_numpy(x), precision), ref)
    _same(quantize_embeddings(list(x), precision), ref)  # a list of vectors
    _same(
        quantize_embeddings(torch.from_numpy(x).bfloat16(), precision),
        st_quant.quantize_embeddings(torch.from_numpy(x).bfloat16(), precision),
    )
    matrices = [x[:5], x[5:6], x[6:]]  # token embeddings: one calibration shared by every matrix
    _same(quantize_embeddings(matrices, precision), st_quant.quantize_embeddings(matrices, precision))
    tensors = [torch.from_numpy(m) for m in matrices]
    _same(quantize_embeddings(tensors, precision), st_quant.quantize_embeddings(tensors, precision))
    assert quantize_embeddings([], precision) == []


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("dim", [1, 8, 9, 16])
def test_shapes_and_empty(precision, dim):
    x = _embeddings(4, n=5, dim=dim + 5)[:, :dim]
    _same(quantize_embeddings(x, precision), st_quant.quantize_embeddings(x, precision))
    empty = np.zeros((0, dim), dtype=np.float32)
    _same(quantize_embeddings(empty, precision), st_quant.quantize_embeddings(empty, precision))


def test_bad_input_is_refused():
    x = _embeddings(5, n=4)
    with pytest.raises(ValueError, match="precision must be one of.*did you mean 'int8'"):
        quantize_embeddings(x, "int9")
    with pytest.raises(ValueError, match="must be floats"):
        quantize_embeddings(quantize_embeddings(x, "int8"), "int8")
