"""Benchmark: torch's CPU int8 GEMM kernels against float32 `F.linear`, on the linear shapes of MiniLM and BERT-base.

Each candidate computes `y = x @ w.T + b` in float32 out, from float32 `x [tokens, in]`, with the weight quantized
once (symmetric int8, one scale per output channel) and the activations quantized on every call (the time of
that quantization is included):

* ``fp32``: `F.linear` in float32 (the reference, and kosim's encode today);
* ``fbgemm_dynamic``: `torch.ops.quantized.linear_dynamic` (fbgemm / the ``x86`` engine; activations per tensor,
  asymmetric uint8, quantized inside the op). Needs `torch.quantize_per_channel`, deprecated in torch 2.13;
* ``int_mm_row``: activations per row (per token), symmetric int8, quantized with torch ops; `torch._int_mm`
  (int32 out), then rescaled by row scale x channel scale plus bias;
* ``onednn_u8``: activations per tensor, symmetric, quantized with torch ops into uint8 with zero point 128;
  oneDNN's prepacked `torch.ops.onednn.qlinear_pointwise` with float32 output and the bias fused (int8
  activations with zero point 0 took 25 s for the 512 x 384 x 1152 GEMM here: a reference kernel, not VNNI);
* ``kosim_int8_row``: `kosim.nn.int8.Int8Linear`: activations per row (per token), asymmetric (the row's
  [min, max] on 256 uint8 levels); the oneDNN GEMM (zero point 128) applies the weight scales, an in-place
  `addcmul` the row scales and bias and an `addr_` the row offsets; row blocks of <= 2048;
* ``onednn_u8_gelu``: the oneDNN per-tensor kernel with GELU fused as a oneDNN post-op (for the feed-forward input layer; its
  error is measured against `gelu(F.linear)`).

Reported per (model, layer, tokens): GFLOP/s-equivalent (2 x tokens x in x out / best time), the speed-up over
fp32, and the error against fp32: max abs, and relative RMS (||y - y32|| / ||y32||). Inputs are
LayerNorm-like (standard normal, a few outlier columns as in trained transformers), weights normal(0, 0.04).

Usage::

    python benchmarks/bench_int8_kernels.py [--tokens 512,2048,8192] [--models minilm,bert-base] [--repeats 5]
        [--threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

# (name, in, out) of every linear layer of one Transformer block
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # kosim from this checkout

SHAPES = {
    "minilm": [("qkv", 384, 1152), ("attn_out", 384, 384), ("ff_in", 384, 1536), ("ff_out", 1536, 384)],
    "bert-base": [("qkv", 768, 2304), ("attn_out", 768, 768), ("ff_in", 768, 3072), ("ff_out", 3072, 768)],
}


def cpu_flags() -> list[str]:
    """The int8/bf16-relevant flags of this CPU (from /proc/cpuinfo; empty where it is not readable)."""
    wanted = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8")
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    have = set(line.split(":", 1)[-1].split())
    return [flag for flag in wanted if flag in have]


def quantize_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: `(q [out, in] int8, scale [out] float32)`."""
    scale = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12)
    return torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8), scale


def make_candidates(w: torch.Tensor, b: torch.Tensor, tokens: int) -> dict[str, tuple[Callable, bool]]:
    """name -> (fn(x) -> y float32, whether fn fuses GELU)."""
    qw, sw = quantize_weight(w)
    out_features = w.shape[0]
    candidates: dict[str, tuple[Callable, bool]] = {"fp32": (lambda x: F.linear(x, w, b), False)}

    try:
        qt = torch.quantize_per_channel(w, sw.double(), torch.zeros(out_features, dtype=torch.int64), 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(qt, b)
        candidates["fbgemm_dynamic"] = (lambda x: torch.ops.quantized.linear_dynamic(x, packed, False), False)
    except (RuntimeError, AttributeError) as exc:
        print(f"fbgemm_dynamic unavailable: {exc}")

    qw_t = qw.t().contiguous()  # [in, out], the layout `_int_mm` reads fastest (measured against qw.t())

    def int_mm_row(x):
        sx = (x.abs().amax(dim=1, keepdim=True) / 127.0).clamp_min_(1e-12)  # [tokens, 1]
        qx = torch.round(x / sx).clamp_(-127, 127).to(torch.int8)
        acc = torch._int_mm(qx, qw_t)  # [tokens, out] int32
        return torch.addcmul(b, acc.float(), sx * sw)

    candidates["int_mm_row"] = (int_mm_row, False)

    try:
        pw = torch.ops.onednn.qlinear_prepack(qw, [tokens, w.shape[1]])
        zeros = torch.zeros(out_features, dtype=torch.int64)

        def onednn(x, post="none", algo=""):
            # uint8 with zero point 128 holds symmetric int8 values: oneDNN's u8 x s8 kernel is the VNNI one
            # (int8 x int8 activations run a reference kernel ~1000x slower on this CPU, measured)
            sx = float(x.abs().max()) / 127.0 or 1.0
            qx = (x * (1.0 / sx)).round_().add_(128).clamp_(0, 255).to(torch.uint8)
            return torch.ops.onednn.qlinear_pointwise(
                qx, sx, 128, pw, sw, zeros, b, 1.0, 0, torch.float32, post, [], algo
            )

        candidates["onednn_u8"] = (onednn, False)
        candidates["onednn_u8_gelu"] = (lambda x: onednn(x, "gelu", "none"), True)
    except (RuntimeError, AttributeError) as exc:
        print(f"onednn int8 unavailable: {exc}")

    from kosim.nn.int8 import Int8Linear, onednn_int8_supported

    if onednn_int8_supported():
        linear = torch.nn.Linear(w.shape[1], out_features)
        with torch.no_grad():
            linear.weight.copy_(w)
            linear.bias.copy_(b)
        candidates["kosim_int8_row"] = (Int8Linear.from_float(linear), False)
    return candidates


def best_time(fn: Callable, x: torch.Tensor, repeats: int) -> float:
    fn(x)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t)
    return best


def run(models: list[str], token_counts: list[int], repeats: int) -> list[dict]:
    rows = []
    for model in models:
        for layer, k, n in SHAPES[model]:
            torch.manual_seed(0)
            w = torch.randn(n, k) * 0.04
            b = torch.randn(n) * 0.1
            for tokens in token_counts:
                x = torch.randn(tokens, k)
                x[:, :4] *= 8.0  # a few outlier features, as LayerNorm outputs of trained models have
                ref = F.linear(x, w, b)
                ref_gelu = F.gelu(ref)
                flops = 2.0 * tokens * k * n
                fp32_s = None
                for name, (fn, fused_gelu) in make_candidates(w, b, tokens).items():
                    if fused_gelu and layer != "ff_in":
                        continue
                    y = fn(x)
                    target = ref_gelu if fused_gelu else ref
                    err = float((y - target).abs().max())
                    seconds = best_time(fn, x, repeats)
                    fp32_s = seconds if name == "fp32" else fp32_s
                    row = {
                        "model": model,
                        "layer": f"{layer} {k}->{n}",
                        "tokens": tokens,
                        "kernel": name,
                        "ms": round(seconds * 1e3, 3),
                        "gflops": round(flops / seconds / 1e9, 1),
                        "speedup": round(fp32_s / seconds, 2),
                        "max_abs_err": float(f"{err:.3g}"),
                        "rel_rms_err": float(f"{float((y - target).norm() / target.norm()):.3g}"),
                    }
                    rows.append(row)
                    print(
                        f"{model:9s} {row['layer']:18s} {tokens:5d} {name:19s} {row['ms']:9.3f} ms "
                        f"{row['gflops']:7.1f} GFLOP/s  x{row['speedup']:<5} err {row['max_abs_err']:.3g} "
                        f"(rel rms {row['rel_rms_err']:.3g})",
                        flush=True,
                    )
    return rows


def summary(rows: list[dict]) -> dict[str, float]:
    """Geometric-mean speed-up over fp32 of each kernel, over all shapes."""
    import math

    out = {}
    for name in sorted({r["kernel"] for r in rows}):
        ups = [r["speedup"] for r in rows if r["kernel"] == name]
        out[name] = round(math.exp(sum(math.log(u) for u in ups) / len(ups)), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", default="512,2048,8192")
    ap.add_argument("--models", default="minilm,bert-base")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    flags = cpu_flags()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(f"cpu flags: {' '.join(flags)}; quantized engine {torch.backends.quantized.engine}")
    rows = run(args.models.split(","), [int(t) for t in args.tokens.split(",")], args.repeats)
    geo = summary(rows)
    print("geometric-mean speed-up over fp32:", geo)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "torch": torch.__version__,
                    "threads": torch.get_num_threads(),
                    "cpu_flags": flags,
                    "rows": rows,
                    "geomean_speedup": geo,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
