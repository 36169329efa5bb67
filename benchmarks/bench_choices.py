"""Benchmark: kosim's training step with each of its design choices undone, to show which ones pay off.

One process, the offline all-MiniLM-L6-v2, MNRL on the same no-duplicates KorNLI batches as ``bench_train.py``,
fp32. Every variant has its own copy of the model and optimizer; the variants take turns step by step on the same
batch (round robin), so drifting machine load hits them all alike. Variants:

* ``kosim``: as shipped (fused QKV projection, length-bucketed attention grids, kosim's cheap dropout masks);
* ``torch-dropout``: torch's dropout for hidden states and ``F.scaled_dot_product_attention(dropout_p=...)`` for
  attention (what kosim did before ``kosim.nn.dropout``);
* ``separate-qkv``: query, key and value as three projections (Hugging Face's layout) instead of one GEMM;
* ``one-grid``: attention over one padded ``[seqs, max_len]`` grid instead of length buckets (the linear layers
  stay packed);
* ``nested``: attention through PyTorch's nested jagged tensors (``torch.nested.nested_tensor_from_jagged`` over
  the packed token states, no grids) and ``F.scaled_dot_product_attention`` with its own dropout;
* ``compile-ffn``: ``torch.compile(dynamic=True)`` of each layer's feed-forward sub-block (GEMM, GELU, GEMM,
  dropout, residual, LayerNorm), which lets inductor fuse the elementwise work around the GEMMs. Compile time is
  reported apart from the step time.

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/bench_choices.py [--steps 6] [--variants kosim,torch-dropout,...] [--json P]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import minilm_dir, plan_batches, triplets, versions  # noqa: E402

VARIANTS = ("kosim", "torch-dropout", "separate-qkv", "one-grid", "nested", "compile-ffn")


class _TorchDropoutAttention:
    """`attention_with_dropout` computed by PyTorch's SDPA (its own dropout) from the same `[3, seqs*heads, ...]`."""

    def __call__(self, qkv: Tensor, key_mask: Tensor, dropout_p: float) -> Tensor:
        seqs = key_mask.shape[0]
        q, k, v = (t.unflatten(0, (seqs, -1)) for t in qkv.unbind(0))  # [seqs, heads, len, d]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=dropout_p)
        return out.flatten(0, 1)


class _SeparateQKV(nn.Module):
    """The fused `[3 * hidden, hidden]` projection run as three `[hidden, hidden]` GEMMs on the same parameters."""

    def __init__(self, fused: nn.Linear):
        super().__init__()
        self.fused = fused

    def forward(self, x: Tensor) -> Tensor:
        ws, bs = self.fused.weight.chunk(3), self.fused.bias.chunk(3)
        return torch.cat([F.linear(x, w, b) for w, b in zip(ws, bs)], dim=-1)


def _ffn(block, x: Tensor) -> Tensor:
    return block.ff_norm(x + block.dropout(block.ff_out(block.act(block.ff_in(x)))))


def _compile_ffn(model) -> None:
    from kosim.nn.attention import AttentionGrid

    for block in model.encoder.layers:
        ffn = torch.compile(lambda x, b=block: _ffn(b, x), dynamic=True)

        def forward(x: Tensor, grid: AttentionGrid, b=block, f=ffn) -> Tensor:
            x = b.attn_norm(x + b.dropout(b.attn(x, grid)))
            return f(x)

        block.forward = forward


def _one_grid(batch):
    packed = dataclasses.replace(batch.packed, grid_index=None, token_slot=None, grid_mask=None, buckets=())
    return dataclasses.replace(batch, packed=packed)


@contextlib.contextmanager
def _nested_attention():
    """AttentionGrid.attention over nested jagged tensors: one `[seqs, heads, j, head_dim]` view of the tokens."""
    from kosim.nn.attention import AttentionGrid

    saved = AttentionGrid.__dict__["from_packed"], AttentionGrid.__dict__["attention"]
    build_grid = AttentionGrid.from_packed

    def from_packed(batch):
        grid = build_grid(batch)
        grid.cu_seqlens = batch.cu_seqlens
        return grid

    def attention(self, qkv: Tensor, num_heads: int, dropout_p: float = 0.0) -> Tensor:
        tokens, hidden = qkv.shape[0], qkv.shape[-1] // 3
        # [tokens, heads, d] each; contiguous, since strided values find no SDPA backend for jagged tensors on CPU
        heads = [t.contiguous() for t in qkv.view(tokens, 3, num_heads, hidden // num_heads).unbind(1)]
        q, k, v = (torch.nested.nested_tensor_from_jagged(t, self.cu_seqlens).transpose(1, 2) for t in heads)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)  # [seqs, heads, j, d]
        return out.transpose(1, 2).values().reshape(tokens, hidden)

    AttentionGrid.from_packed, AttentionGrid.attention = staticmethod(from_packed), attention
    try:
        yield
    finally:
        AttentionGrid.from_packed, AttentionGrid.attention = saved


@contextlib.contextmanager
def _torch_dropout():
    import kosim.nn.attention as attention
    import kosim.nn.dropout as dropout

    saved = attention.attention_with_dropout, dropout.dropout
    attention.attention_with_dropout = _TorchDropoutAttention()
    dropout.dropout = lambda x, p, training=True: F.dropout(x, p, training)
    try:
        yield
    finally:
        attention.attention_with_dropout, dropout.dropout = saved


def build(variant: str):
    """(step function, setup seconds) of one variant: its own model, optimizer and per-step context."""
    from kosim.data.collate import collate
    from kosim.losses import MultipleNegativesRankingLoss
    from kosim.model import SentenceEncoder
    from kosim.training.step import loss_backward

    model = SentenceEncoder.load(minilm_dir())
    model.train()
    data = triplets().tokenize(model.tokenize)
    loss_fn = MultipleNegativesRankingLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, fused=True)
    context = {"torch-dropout": _torch_dropout, "nested": _nested_attention}.get(variant, contextlib.nullcontext)
    if variant == "separate-qkv":
        for block in model.encoder.layers:
            block.attn.qkv = _SeparateQKV(block.attn.qkv)
    if variant == "compile-ffn":
        _compile_ffn(model)

    def step(rows: list[int]) -> float:
        batch = collate(data, rows)
        if variant == "one-grid":
            batch = _one_grid(batch)
        with context():
            loss = loss_backward(model, loss_fn, batch)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--steps", type=int, default=6, help="timed steps per variant")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")

    torch.manual_seed(0)
    batches = plan_batches(args.batch_size, args.steps + 2)
    steps, warmup_s, times, errors = {}, {}, {v: [] for v in variants}, {}
    for v in variants:
        try:
            steps[v] = build(v)
            t = time.perf_counter()
            for rows in batches[:2]:  # warm-up; for compile-ffn this includes compiling
                steps[v](rows)
            warmup_s[v] = time.perf_counter() - t
        except Exception as exc:  # a variant that cannot run here is reported, not fatal
            errors[v] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            steps.pop(v, None)
        print(f"  {v}: ready" if v in steps else f"  {v}: {errors[v]}", file=sys.stderr, flush=True)
    for rows in batches[2:]:
        for v, step in steps.items():
            t = time.perf_counter()
            step(rows)
            times[v].append(time.perf_counter() - t)

    base = times.get("kosim") or None
    print(f"\nMiniLM, batch {args.batch_size}, fp32, {torch.get_num_threads()} threads, {args.steps} steps each")
    print("| variant | s/step (median / best) | time vs kosim, same batch (median / range) | warm-up (2 steps) s |")
    print("|---|---|---|---|")
    rows = []
    for v in variants:
        if v in errors:
            print(f"| {v} | failed: {errors[v]} | | |")
            continue
        med, best = statistics.median(times[v]), min(times[v])
        ratios = [t / b for t, b in zip(times[v], base)] if base else []  # step by step: the same batch, adjacent
        rel = f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})" if ratios else "-"
        print(f"| {v} | {med:.3f} / {best:.3f} | {rel} | {warmup_s[v]:.1f} |")
        rows.append(
            {
                "variant": v,
                "median_s": med,
                "best_s": best,
                "times": times[v],
                "ratios": ratios,
                "warmup_s": warmup_s[v],
            }
        )
    if args.json:
        meta = {"versions": versions(), "threads": torch.get_num_threads(), "batch_size": args.batch_size}
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows, "errors": errors}, indent=1))


if __name__ == "__main__":
    main()
