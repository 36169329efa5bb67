#!/usr/bin/env python
"""Search stage at scale: kosim.search.topk_search on random unit vectors, memory and time against the machine.

``--queries`` x ``--docs`` random unit vectors of dimension ``--dim`` (float32), exact top ``--top-k`` by cosine.
Each library runs in a fresh subprocess so that its peak RSS (``VmHWM``) is its own; the embeddings are made
inside it before the peak mark is reset. Reported per library: peak RSS against the corpus embeddings' size
(target: peak <= corpus + 1 GiB), seconds against the time the matmul work (``2 x queries x docs x dim`` FLOPs)
takes at the machine's float32 matmul peak, measured in the same subprocess (``benchmarks/machine.py``; target:
within 2x), and the load average. ``--libs kosim,st`` adds sentence-transformers' ``util.semantic_search`` on the
same vectors (only at sizes it survives) and checks the two agree on the top-k ids.

    HF_HUB_OFFLINE=1 python benchmarks/bench_search_scale.py                              # 100k x 1M, k 100
    HF_HUB_OFFLINE=1 python benchmarks/bench_search_scale.py --queries 10000 --docs 100000 --libs kosim,st
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024**2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--queries", type=int, default=100_000)
    p.add_argument("--docs", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--top-k", type=int, default=100)
    p.add_argument("--libs", default="kosim", help="comma-separated: kosim, st")
    p.add_argument("--corpus-chunk-size", type=int, default=50_000)
    p.add_argument("--query-chunk-size", type=int, default=1024)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def _unit_vectors(n: int, dim: int, seed: int):
    """``[n, dim]`` float32 random unit rows, made block by block (no float64 or temporary n x dim copies)."""
    import torch

    out = torch.empty((n, dim), dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, n, 65536):
        block = torch.randn((min(65536, n - start), dim), generator=gen)
        out[start : start + block.shape[0]] = torch.nn.functional.normalize(block, dim=1)
    return out


def child(args: argparse.Namespace) -> dict:
    import torch

    sys.path.insert(0, str(ROOT))
    from benchmarks.machine import matmul_peak

    if args.threads:
        torch.set_num_threads(args.threads)
    queries = _unit_vectors(args.queries, args.dim, 0)
    corpus = _unit_vectors(args.docs, args.dim, 1)
    peak_flops, n = matmul_peak(torch.float32)
    load_before = os.getloadavg()[0]
    rss_start = _status_kib("VmRSS") / 1024
    Path("/proc/self/clear_refs").write_text("5\n")  # reset VmHWM to the current RSS
    t = time.perf_counter()
    if args.child == "kosim":
        from kosim.search import topk_search

        _, index = topk_search(queries, corpus, args.top_k, "cos", args.corpus_chunk_size, args.query_chunk_size)
    else:
        from sentence_transformers.util import semantic_search

        hits = semantic_search(
            queries, corpus, top_k=args.top_k, corpus_chunk_size=args.corpus_chunk_size,
            query_chunk_size=args.query_chunk_size,
        )  # fmt: skip
        index = torch.tensor([[h["corpus_id"] for h in row] for row in hits])
    seconds = time.perf_counter() - t
    peak = _status_kib("VmHWM") / 1024
    flops = 2.0 * args.queries * args.docs * args.dim
    corpus_mib = corpus.numel() * 4 / MIB
    sample = index[:: max(1, args.queries // 200)].sort(dim=1).values  # ids of every ~200th query, for agreement
    return {
        "lib": args.child,
        "queries": args.queries,
        "docs": args.docs,
        "dim": args.dim,
        "top_k": args.top_k,
        "seconds": seconds,
        "corpus_mib": corpus_mib,
        "queries_mib": queries.numel() * 4 / MIB,
        "rss_start_mib": rss_start,
        "peak_rss_mib": peak,
        "peak_minus_corpus_mib": peak - corpus_mib,
        "rss_target_met": peak <= corpus_mib + 1024,
        "matmul_peak_gflops": peak_flops / 1e9,
        "matmul_peak_n": n,
        "seconds_at_peak": flops / peak_flops,
        "time_over_peak_time": seconds / (flops / peak_flops),
        "time_target_met": seconds <= 2 * flops / peak_flops,
        "threads": torch.get_num_threads(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "sample_ids": sample.tolist(),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return []
    passthrough = [
        f"--queries={args.queries}", f"--docs={args.docs}", f"--dim={args.dim}", f"--top-k={args.top_k}",
        f"--corpus-chunk-size={args.corpus_chunk_size}", f"--query-chunk-size={args.query_chunk_size}",
    ] + ([f"--threads={args.threads}"] if args.threads else [])  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    results = []
    for lib in args.libs.split(","):
        cmd = [sys.executable, __file__, *passthrough, "--child", lib.strip()]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            results.append({"lib": lib, "error": done.stderr.strip().splitlines()[-1:], "rc": done.returncode})
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    ok = [r for r in results if "sample_ids" in r]
    if len(ok) == 2:
        ok[0]["same_ids_as_" + ok[1]["lib"]] = ok[0]["sample_ids"] == ok[1]["sample_ids"]
    for r in results:
        r.pop("sample_ids", None)
        print(json.dumps(r))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
