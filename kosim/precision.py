"""Precision: compute dtypes by name, autocast contexts, and whether bf16 is worth it on a device.

One helper for encode, training and evaluation alike, so "bf16 on CPU" means the same everywhere.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable

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


# Where Linux lists the CPU's feature flags; a module constant so tests can point it at a fake file.
CPUINFO_PATH = "/proc/cpuinfo"

# x86 feature flags (as /proc/cpuinfo spells them) of a CPU where bf16 matmuls beat float32: AMX tiles only.
# AVX-512 alone makes oneDNN *emulate* bf16 (measured on a Xeon with AVX-512 + VNNI: bf16 matmul 68 GFLOP/s vs float32
# 293); AVX-512 BF16 dot products without AMX still lose (measured on a Xeon with avx512_bf16 + avx512_fp16, no AMX:
# bf16 0.16-0.17 TFLOP/s vs float32 0.27-0.32, and a bf16 training step 1.27x slower); AVX2-only CPUs such as AMD
# Zen 3 fall back to a scalar kernel 200-500x slower than float32 (benchmarks/RESULTS.md).
NATIVE_BF16_FLAGS = frozenset({"amx_bf16"})


def cpu_flags(cpuinfo: str) -> frozenset[str] | None:
    """The feature flags of the first CPU in the text of Linux's ``/proc/cpuinfo`` (its ``flags`` line), or None
    when there is no such line (not an x86 Linux machine)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return frozenset(value.split())
    return None


def flags_have_native_bf16(flags: Iterable[str]) -> bool:
    """Whether a CPU with these x86 feature flags runs bf16 matmuls faster than float32 (``NATIVE_BF16_FLAGS``)."""
    return not NATIVE_BF16_FLAGS.isdisjoint(flags)


def _onednn_bf16_supported() -> bool:
    # oneDNN's own check: whether this torch build can run bf16 kernels at all. It is also true where bf16 is only
    # emulated, so it is a necessary condition, never a sufficient one.
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


@functools.cache
def _cpu_has_native_bf16() -> bool:
    """Whether this machine's CPU runs bf16 matmuls natively, decided once per process from its feature flags.

    Only x86 Linux lists them (``/proc/cpuinfo``); elsewhere the answer is False, so ``bf16="auto"`` means float32
    there: never the slow path, and the same choice on every run (a timing probe could flip between runs).
    """
    try:
        with open(CPUINFO_PATH, encoding="utf-8", errors="replace") as f:
            flags = cpu_flags(f.read())
    except OSError:
        return False
    return flags is not None and flags_have_native_bf16(flags) and _onednn_bf16_supported()


def bf16_is_fast(device: torch.device | str) -> bool:
    """Whether bf16 matmuls run faster than float32 on `device`: CUDA with bf16 support, or a CPU with AMX (not
    AVX-512 BF16 without AMX, measured slower than float32, nor AVX-512 alone, which only emulates bf16). The one answer for
    training's `bf16="auto"` and the benchmarks' default dtypes."""
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


__all__ = [
    "DTYPES",
    "NATIVE_BF16_FLAGS",
    "autocast",
    "bf16_is_fast",
    "cpu_flags",
    "flags_have_native_bf16",
    "resolve_bf16",
]
