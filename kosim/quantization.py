"""Embedding quantization: float embeddings -> int8 / uint8 buckets or packed sign bits.

The output equals sentence-transformers' `quantize_embeddings` bit for bit: scalar quantization maps each
dimension's `[min, max]` range (from `ranges`, `calibration_embeddings` or the embeddings themselves) onto 256
buckets; binary quantization keeps the sign bit (`> 0`) of each dimension, packed 8 to a byte (`binary` shifted
by -128 into int8). A list of `[tokens, dim]` matrices (token embeddings) shares one set of ranges.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")

__all__ = ["PRECISIONS", "check_precision", "quantization_ranges", "quantize_embeddings"]


def check_precision(precision: Any) -> str:
    """`precision` if it is one of `PRECISIONS`, else a ValueError naming the choices."""
    if precision not in PRECISIONS:
        from kosim.utils.suggest import did_you_mean

        hint = did_you_mean(precision, PRECISIONS) if isinstance(precision, str) else ""
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}{hint}")
    return precision


def _to_numpy(x: Any) -> np.ndarray:
    """A numpy array from an array or a torch tensor (bfloat16 read as float32, any device)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor; torch is only needed when one is passed
        import torch

        x = x.detach()
        return (x.float() if x.dtype == torch.bfloat16 else x).cpu().numpy()
    return np.asarray(x)


def quantization_ranges(
    embeddings: np.ndarray, precision: str, calibration_embeddings: np.ndarray | None = None
) -> np.ndarray:
    """Per-dimension `[2, dim]` (min row, max row) of the calibration embeddings, else of `embeddings`.

    Ranges from a single embedding are meaningless (every bucket collapses), so that is refused.
    """
    data = calibration_embeddings
    if data is None:
        if embeddings.ndim == 1 or embeddings.shape[0] == 1:
            raise ValueError(
                f"{precision} quantization needs ranges from more than one embedding: pass `ranges` or "
                "`calibration_embeddings` computed on a representative set"
            )
        data = embeddings
    data = _to_numpy(data)
    return np.stack([data.min(axis=0), data.max(axis=0)])


def _scalar(embeddings: np.ndarray, precision: str, ranges: np.ndarray) -> np.ndarray:
    ranges = np.asarray(ranges).astype(np.float32, copy=False)
    low = ranges[0]  # [dim]
    step = (ranges[1] - low) / 255  # [dim]
    step = np.where(step == 0, np.float32(1), step)  # a constant dimension falls in bucket 0
    buckets = np.clip(np.floor((embeddings - low) / step), 0, 255)
    return buckets.astype(np.uint8) if precision == "uint8" else (buckets - 128).astype(np.int8)


def _empty(dim: int, precision: str) -> np.ndarray:
    width = (dim + 7) // 8 if precision.endswith("binary") else dim
    return np.zeros((0, width), dtype=np.int8 if precision in ("int8", "binary") else np.uint8)


def quantize_embeddings(
    embeddings: Any,
    precision: str,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Quantize float embeddings `[n, dim]` (array, tensor, or a list of vectors or of `[tokens, dim]` matrices).

    - `float32`: a float32 copy.
    - `int8` / `uint8`: `[n, dim]`, bucket `floor((x - min) / ((max - min) / 255))` clipped to [0, 255]
      (int8: minus 128). `ranges` is `[2, dim]` (min row, max row); without it the ranges come from
      `calibration_embeddings`, else from the embeddings (a single embedding is refused).
    - `ubinary`: `[n, ceil(dim / 8)]` uint8, the bits `x > 0` packed big-endian; `binary`: the same minus 128, int8.

    A list of matrices returns a list, quantized with one set of ranges over all of them.
    """
    check_precision(precision)
    if isinstance(embeddings, (list, tuple)):
        if not embeddings:
            return []
        items = [_to_numpy(e) for e in embeddings]
        if items[0].ndim == 2:  # token embeddings: one calibration for every matrix
            if precision.endswith("int8") and ranges is None:
                data = np.concatenate(items) if calibration_embeddings is None else calibration_embeddings
                if len(data):
                    ranges = quantization_ranges(data, precision, calibration_embeddings)
            return [quantize_embeddings(m, precision, ranges, calibration_embeddings) for m in items]
        embeddings = np.array(items)
    embeddings = _to_numpy(embeddings)
    if embeddings.dtype in (np.int8, np.uint8):
        raise ValueError(f"embeddings to quantize must be floats, got {embeddings.dtype} (already quantized?)")
    if embeddings.ndim == 2 and embeddings.shape[0] == 0 and precision != "float32":
        return _empty(embeddings.shape[1], precision)
    if precision == "float32":
        return embeddings.astype(np.float32)
    if precision in ("int8", "uint8"):
        if ranges is None:
            ranges = quantization_ranges(embeddings, precision, calibration_embeddings)
        return _scalar(embeddings, precision, ranges)
    packed = np.packbits(embeddings > 0, axis=-1)  # [..., ceil(dim / 8)] uint8
    return packed if precision == "ubinary" else (packed.astype(np.int16) - 128).astype(np.int8)
