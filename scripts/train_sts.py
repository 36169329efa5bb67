#!/usr/bin/env python
"""Recipe: fine-tune a sentence-embedding model on KorSTS with CosineSimilarityLoss (seed model 001).

The seed card's recipe: start from snunlp/KR-SBERT-V40K-klueNLI-augSTS (a BERT sentence encoder, mean pooling,
128 tokens), regress cos(u, v) onto the gold score / 5 with MSE (CosineSimilarityLoss), batch 16, one epoch,
learning rate 5e-5 with a linear schedule and 10% warm-up, seed 42; compute the validation loss on the dev set
and the dev-set Spearman correlation four times per epoch. The script builds the same RunConfig as
``kosim/configs/sts.toml`` and runs it through the code path of ``kosim train``.

    python scripts/train_sts.py                                   # bundled KorSTS train/dev
    python scripts/train_sts.py --model klue/bert-base --lr 2e-5 --output output/sts-klue-bert
    python scripts/train_sts.py --test /data/KorSTS/sts-test.tsv  # also evaluate a test file before/after

Progress goes to stderr. The last stdout line is one JSON object:
``{"before": {...}, "after": {...}, "output_dir": ..., "train_seconds": ...}`` where ``before``/``after`` hold
``validation_loss``, ``sts-dev_pearson_cosine``, ``sts-dev_spearman_cosine`` (and ``sts-test_...`` with
``--test``), named as sentence-transformers' evaluators name them. The model (sentence-transformers format) and
its model card are saved to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "snunlp/KR-SBERT-V40K-klueNLI-augSTS"
EVALS_PER_EPOCH = 4  # the seed evaluated at 25%, 50%, 75% and 100% of its epoch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from kosim.data import korsts_path

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="see the module docstring for examples")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"hub id or local directory (default {DEFAULT_MODEL})")
    p.add_argument("--train", default=str(korsts_path("train")), help="KorSTS-format training file (default: bundled)")
    p.add_argument("--dev", default=str(korsts_path("dev")), help="KorSTS-format dev file (default: bundled)")
    p.add_argument("--test", default=None, help="KorSTS-format test file, evaluated before and after training only")
    p.add_argument("--batch-size", type=int, default=16, help="training batch size (default 16)")
    p.add_argument("--eval-batch-size", type=int, default=None, help="evaluation batch size (default: --batch-size)")
    p.add_argument("--epochs", type=float, default=1.0, help="training epochs (default 1)")
    p.add_argument("--lr", type=float, default=5e-5, help="peak learning rate (default 5e-5)")
    p.add_argument("--warmup-ratio", type=float, default=0.1, help="linear warm-up share of all steps (default 0.1)")
    p.add_argument("--max-seq-length", type=int, default=128, help="tokens per text (default 128)")
    p.add_argument("--max-train-samples", type=int, default=None, help="use only the first N training pairs")
    p.add_argument("--max-eval-samples", type=int, default=None, help="use only the first N dev/test pairs")
    p.add_argument(
        "--eval-steps",
        type=int,
        default=None,
        help=f"evaluate every N steps (default: {EVALS_PER_EPOCH} times per epoch, like the seed)",
    )
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--output", default=None, help="output directory (default output/sts-MODEL-TIMESTAMP)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--bf16", action="store_true", help="train under bfloat16 autocast")
    precision.add_argument("--fp16", action="store_true", help="train under float16 autocast with loss scaling (CUDA)")
    return p.parse_args(argv)


def default_eval_steps(train: str, max_rows: int | None, batch_size: int) -> int:
    """Steps between evaluations so that an epoch has EVALS_PER_EPOCH of them (84 of 336 steps in the seed)."""
    from kosim.data import read_korsts

    if not Path(train).is_file():
        return 1  # parse_config reports the missing file, naming the key
    rows = len(read_korsts(train))
    rows = min(rows, max_rows) if max_rows is not None else rows
    return max(1, math.ceil(math.ceil(rows / batch_size) / EVALS_PER_EPOCH))


def build_raw_config(args: argparse.Namespace) -> dict[str, Any]:
    """The run config (the TOML schema of kosim.config) this recipe trains with."""
    eval_steps = args.eval_steps or default_eval_steps(args.train, args.max_train_samples, args.batch_size)
    limit = {"max_rows": args.max_eval_samples} if args.max_eval_samples else {}
    train_limit = {"max_rows": args.max_train_samples} if args.max_train_samples else {}
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    output = args.output or f"output/sts-{Path(args.model.rstrip('/')).name}-{stamp}"
    raw: dict[str, Any] = {
        "model": {"name_or_path": args.model, "max_seq_length": args.max_seq_length},
        "datasets": [
            {"name": "sts", "path": args.train, "format": "korsts", "loss": "CosineSimilarityLoss", **train_limit}
        ],
        "eval_datasets": [{"name": "sts", "path": args.dev, "format": "korsts", **limit}],
        "evaluators": [{"type": "sts", "name": "sts-dev", "path": args.dev, **limit}],
        "training": {
            "output_dir": output,
            "per_device_train_batch_size": args.batch_size,
            "per_device_eval_batch_size": args.eval_batch_size or args.batch_size,
            "num_train_epochs": args.epochs,
            "learning_rate": args.lr,
            "warmup_ratio": args.warmup_ratio,
            "lr_scheduler_type": "linear",
            "batch_sampler": "batch_sampler",
            "eval_strategy": "steps",
            "eval_steps": eval_steps,
            "logging_steps": eval_steps,
            "seed": args.seed,
            "bf16": args.bf16,
            "fp16": args.fp16,
        },
    }
    if args.device:
        raw["training"]["device"] = args.device
    if args.test:
        raw["evaluators"].append(
            {"type": "sts", "name": "sts-test", "path": args.test, "during_training": False, **limit}
        )
    return raw


def main(argv: list[str] | None = None) -> int:
    from kosim.config import ConfigError, parse_config, run
    from kosim.data import DataError
    from kosim.nn.loading import CheckpointError
    from kosim.training import TrainingError

    args = parse_args(argv)
    try:
        config = parse_config(build_raw_config(args), base_dir=Path.cwd(), source="train_sts.py")
        result = run(config, log=lambda m: print(f"train_sts: {m}", file=sys.stderr, flush=True))
    except (ConfigError, DataError, CheckpointError, OSError, TrainingError) as exc:
        print(f"train_sts: error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, TrainingError) else 2
    if os.environ.get("RANK", "0") == "0":  # torchrun: one JSON line, from the main process
        print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
