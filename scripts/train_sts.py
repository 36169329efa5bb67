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
import math
import sys
from pathlib import Path
from typing import Any

from kosim.cli.recipe import add_test_evaluator, recipe_parser, row_limits, run_recipe, training_table

DEFAULT_MODEL = "snunlp/KR-SBERT-V40K-klueNLI-augSTS"
EVALS_PER_EPOCH = 4  # the seed evaluated at 25%, 50%, 75% and 100% of its epoch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from kosim.data import korsts_path

    p = recipe_parser(
        __doc__.split("\n\n")[0],
        recipe="sts",
        model=DEFAULT_MODEL,
        train_default=str(korsts_path("train")),
        train_help="KorSTS-format training file (default: bundled)",
        batch_size=16,
        warmup_ratio=0.1,
        rows="pairs",
    )
    p.add_argument(
        "--eval-steps",
        type=int,
        default=None,
        help=f"evaluate every N steps (default: {EVALS_PER_EPOCH} times per epoch, like the seed)",
    )
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
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
    train_limit, limit = row_limits(args)
    raw: dict[str, Any] = {
        "model": {"name_or_path": args.model, "max_seq_length": args.max_seq_length},
        "datasets": [
            {"name": "sts", "path": args.train, "format": "korsts", "loss": "CosineSimilarityLoss", **train_limit}
        ],
        "eval_datasets": [{"name": "sts", "path": args.dev, "format": "korsts", **limit}],
        "evaluators": [{"type": "sts", "name": "sts-dev", "path": args.dev, **limit}],
        "training": training_table(
            args,
            "sts",
            batch_sampler="batch_sampler",
            eval_strategy="steps",
            eval_steps=eval_steps,
            logging_steps=eval_steps,
        ),
    }
    return add_test_evaluator(raw, args)


def main(argv: list[str] | None = None) -> int:
    return run_recipe(build_raw_config(parse_args(argv)), "train_sts")


if __name__ == "__main__":
    sys.exit(main())
