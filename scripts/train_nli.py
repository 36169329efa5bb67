#!/usr/bin/env python
"""Recipe: train a sentence-embedding model on KorNLI triplets with MultipleNegativesRankingLoss (seed model 000).

The seed card's recipe: a RoBERTa encoder with mean pooling (128 tokens) trained on (anchor, entailment,
contradiction) triplets with MultipleNegativesRankingLoss (scale 20, cosine; the contradiction is a hard
negative, the rest of the batch in-batch negatives), batches of 64 with no text twice in a batch
(``no_duplicates``), one epoch, learning rate 5e-5 with a linear decay and no warm-up, round-robin over datasets,
seed 42, and the KorSTS-dev Spearman correlation every 1,000 steps. The script builds the same RunConfig as
``kosim/configs/nli.toml`` and runs it through the code path of ``kosim train``.

Only the Korean XNLI dev set ships with kosim (1,660 triplets, the default ``--train``); for the seed's scale
(568,640 triplets) concatenate KorNLI's snli_1.0_train.ko.tsv and multinli.train.ko.tsv (one header) and pass
it as ``--train``.

    python scripts/train_nli.py --output output/nli-roberta
    python scripts/train_nli.py --model klue/bert-base --train /data/KorNLI/train.ko.tsv --bf16

Progress goes to stderr. The last stdout line is one JSON object:
``{"before": {...}, "after": {...}, "output_dir": ..., "train_seconds": ...}`` where ``before``/``after`` hold
``sts-dev_pearson_cosine`` and ``sts-dev_spearman_cosine`` (and ``sts-test_...`` with ``--test``), named as
sentence-transformers' evaluators name them. The model (sentence-transformers format) and its model card are
saved to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "klue/roberta-base"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from kosim.data import kornli_path, korsts_path

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="see the module docstring for examples")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"hub id or local directory (default {DEFAULT_MODEL})")
    p.add_argument(
        "--train", default=str(kornli_path()), help="KorNLI-format .tsv (default: the bundled Korean XNLI dev set)"
    )
    p.add_argument("--dev", default=str(korsts_path("dev")), help="KorSTS-format dev file (default: bundled)")
    p.add_argument("--test", default=None, help="KorSTS-format test file, evaluated before and after training only")
    p.add_argument("--batch-size", type=int, default=64, help="training batch size (default 64)")
    p.add_argument("--eval-batch-size", type=int, default=None, help="evaluation batch size (default: --batch-size)")
    p.add_argument("--epochs", type=float, default=1.0, help="training epochs (default 1)")
    p.add_argument("--lr", type=float, default=5e-5, help="peak learning rate (default 5e-5)")
    p.add_argument("--warmup-ratio", type=float, default=0.0, help="linear warm-up share of all steps (default 0)")
    p.add_argument("--scale", type=float, default=20.0, help="MNRL similarity scale (default 20)")
    p.add_argument("--max-seq-length", type=int, default=128, help="tokens per text (default 128)")
    p.add_argument("--max-train-samples", type=int, default=None, help="use only the first N training triplets")
    p.add_argument("--max-eval-samples", type=int, default=None, help="use only the first N dev/test pairs")
    p.add_argument(
        "--eval-steps", type=int, default=1000, help="evaluate (and checkpoint) every N steps (default 1000)"
    )
    p.add_argument("--seed", type=int, default=42, help="random seed of training and of the triplet picks (default 42)")
    p.add_argument("--output", default=None, help="output directory (default output/nli-MODEL-TIMESTAMP)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--bf16", action="store_true", help="train under bfloat16 autocast")
    precision.add_argument("--fp16", action="store_true", help="train under float16 autocast with loss scaling (CUDA)")
    return p.parse_args(argv)


def build_raw_config(args: argparse.Namespace) -> dict[str, Any]:
    """The run config (the TOML schema of kosim.config) this recipe trains with."""
    limit = {"max_rows": args.max_eval_samples} if args.max_eval_samples else {}
    train_limit = {"max_rows": args.max_train_samples} if args.max_train_samples else {}
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    output = args.output or f"output/nli-{Path(args.model.rstrip('/')).name}-{stamp}"
    raw: dict[str, Any] = {
        "model": {"name_or_path": args.model, "max_seq_length": args.max_seq_length},
        "datasets": [
            {
                "name": "nli",
                "path": args.train,
                "format": "kornli_triplets",
                "seed": args.seed,
                "loss": "MultipleNegativesRankingLoss",
                "loss_args": {"scale": args.scale, "similarity": "cosine"},
                **train_limit,
            }
        ],
        "evaluators": [{"type": "sts", "name": "sts-dev", "path": args.dev, **limit}],
        "training": {
            "output_dir": output,
            "per_device_train_batch_size": args.batch_size,
            "per_device_eval_batch_size": args.eval_batch_size or args.batch_size,
            "num_train_epochs": args.epochs,
            "learning_rate": args.lr,
            "warmup_ratio": args.warmup_ratio,
            "lr_scheduler_type": "linear",
            "batch_sampler": "no_duplicates",
            "multi_dataset_batch_sampler": "round_robin",
            "eval_strategy": "steps",
            "eval_steps": args.eval_steps,
            "logging_steps": min(500, args.eval_steps),
            "save_steps": args.eval_steps,
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
        config = parse_config(build_raw_config(args), base_dir=Path.cwd(), source="train_nli.py")
        result = run(config, log=lambda m: print(f"train_nli: {m}", file=sys.stderr, flush=True))
    except (ConfigError, DataError, CheckpointError, OSError, TrainingError) as exc:
        print(f"train_nli: error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, TrainingError) else 2
    if os.environ.get("RANK", "0") == "0":  # torchrun: one JSON line, from the main process
        print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
