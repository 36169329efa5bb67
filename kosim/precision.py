"""Precision: compute dtypes by name, autocast contexts, and whether bf16 is worth it on a device.

One helper for encode, training and evaluation alike, so "bf16 on CPU" means the same everywhere.
"""

from __future__ import annotations

import contextlib
import functools

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def autocast(device: torch.device, dtype: str | torch.dtype | None):
    """Autocast context for `dtype` ("float32" = none) on `device`; fp16 is CUDA-only."""
    if dtype is None or dtype in ("float32", torch.float32):
        return contextlib.nullcontext()
    torch_dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
    if torch_dtype == torch.float16 and device.type != "cuda":
        raise ValueError("float16 autocast needs a CUDA device; use bfloat16 on CPU")
    return torch.autocast(device_type=device.type, dtype=torch_dtype)


@functools.cache
def _cpu_has_native_bf16() -> bool:
    # oneDNN's own check: AVX-512 BF16 / AMX or AVX-NE-CONVERT. Without them (e.g. AMD Zen 3, AVX2 only) a bf16
    # matmul falls back to a scalar kernel, measured 200-500x slower than float32 (benchmarks/RESULTS.md).
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def bf16_is_fast(device: torch.device | str) -> bool:
    """Whether bf16 matmuls run natively (faster than float32) on `device`: CUDA with bf16 support, or a CPU
    with AVX-512 BF16 / AMX."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return _cpu_has_native_bf16()
    return False


def resolve_bf16(value: bool | str, device: torch.device | str) -> bool:
    """TrainingArguments.bf16 as a bool: `"auto"` means bf16 exactly where it is fast (`bf16_is_fast`)."""
    if value == "auto":
        return bf16_is_fast(device)
    return bool(value)


__all__ = ["DTYPES", "autocast", "bf16_is_fast", "resolve_bf16"]
