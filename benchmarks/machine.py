"""The machine's matmul peak, measured in the benchmark's own run (shared by bench_train.py and bench_encode.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def matmul_peak(
    dtype: torch.dtype,
    n: int = 4096,
    repeats: int = 5,
    budget_s: float = 10.0,
    before_each: Callable[[], object] | None = None,
    device: str = "cpu",
) -> tuple[float, int]:
    """Best FLOP/s of an `n x n x n` matmul in `dtype`, and the `n` used.

    `n` is halved (down to 256) until `repeats + 1` matmuls fit in about `budget_s`, estimated from a 512^3 probe:
    on a CPU without native bf16 a bf16 matmul runs ~500x slower than float32, and a 4096^3 one would take minutes.
    `before_each` runs before every timed matmul (e.g. a wait for the machine to go quiet). On a CUDA `device`
    every timing waits for the GPU (`torch.cuda.synchronize`).
    """
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    probe = torch.randn(512, 512, device=device).to(dtype)
    probe @ probe
    sync()
    t0 = time.perf_counter()
    probe @ probe
    sync()
    probe_s = max(time.perf_counter() - t0, 1e-6)
    while n > 256 and probe_s * (n / 512) ** 3 * (repeats + 1) > budget_s:
        n //= 2
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b
    sync()
    best = float("inf")
    for _ in range(repeats):
        if before_each is not None:
            before_each()
        t = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best, n


def default_dtypes(fp32: str, bf16: str) -> str:
    """The `--dtypes` default: float32, plus bf16 where this CPU runs it natively (AMX / AVX-512 BF16).

    The answer is `kosim.precision.bf16_is_fast`, the one training's `bf16="auto"` uses (decided by the CPU's
    feature flags: AVX-512 alone only emulates bf16). Without native bf16 a bf16 benchmark runs hours in torch's
    fallback and measures only that; it can still be asked for explicitly.
    """
    from kosim.precision import bf16_is_fast

    if bf16_is_fast("cpu"):
        return f"{fp32},{bf16}"
    print(f"note: this CPU has no native bf16; measuring {fp32} only (pass --dtypes {fp32},{bf16} to force)")
    return fp32
