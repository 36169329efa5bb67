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
import sys
from typing import Any

from kosim.cli.recipe import add_test_evaluator, recipe_parser, row_limits, run_recipe, training_table

DEFAULT_MODEL = "klue/roberta-base"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from kosim.data import kornli_path

    p = recipe_parser(
        __doc__.split("\n\n")[0],
        recipe="nli",
        model=DEFAULT_MODEL,
        train_default=str(kornli_path()),
        train_help="KorNLI-format .tsv (default: the bundled Korean XNLI dev set)",
        batch_size=64,
        warmup_ratio=0.0,
        rows="triplets",
    )
    p.add_argument("--scale", type=float, default=20.0, help="MNRL similarity scale (default 20)")
    p.add_argument(
        "--eval-steps", type=int, default=1000, help="evaluate (and checkpoint) every N steps (default 1000)"
    )
    p.add_argument("--seed", type=int, default=42, help="random seed of training and of the triplet picks (default 42)")
    return p.parse_args(argv)


def build_raw_config(args: argparse.Namespace) -> dict[str, Any]:
    """The run config (the TOML schema of kosim.config) this recipe trains with."""
    train_limit, limit = row_limits(args)
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
        "training": training_table(
            args,
            "nli",
            batch_sampler="no_duplicates",
            multi_dataset_batch_sampler="round_robin",
            eval_strategy="steps",
            eval_steps=args.eval_steps,
            logging_steps=min(500, args.eval_steps),
            save_steps=args.eval_steps,
        ),
    }
    return add_test_evaluator(raw, args)


def main(argv: list[str] | None = None) -> int:
    return run_recipe(build_raw_config(parse_args(argv)), "train_nli")


if __name__ == "__main__":
    sys.exit(main())
