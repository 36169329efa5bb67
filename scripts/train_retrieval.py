#!/usr/bin/env python
"""Recipe: a retrieval model: mine hard negatives with the start model, train (MNRL, GIST or MarginMSE), evaluate.

The pipeline the Korean retrieval models (KURE, KoE5, bge-m3-ko) are trained with, on kosim's parts:

1. mining (``[mining]``): every training query's top candidates from the whole corpus, ranked by the start model,
   minus its positives and (NV-Retriever's positive-aware filter, ``--relative-margin 0.05``) any candidate
   scoring within 5% of the positive, which is likely an unlabelled positive; the ``--num-negatives`` best survivors
   become (query, positive, negative) rows, written to ``--output`` as ``mined-mined.jsonl``. The window is deep
   (``--range-max 1000``): a start model that ranks the positive low scores every candidate above it within the
   margin, and sentence-transformers' default window (11 here) then leaves most queries without a negative (the
   mining summary counts them);
2. training on no-duplicates batches (a text twice in a batch would be a false negative), with gradient caching
   (``--mini-batch-size``) for batches larger than memory allows, with ``--loss``:
   ``mnrl`` (default) MultipleNegativesRankingLoss (scale 20, cosine: the mined negative plus the rest of the batch
   as negatives); ``gist`` GISTEmbedLoss with a frozen copy of the start model as the guide (in-batch candidates
   the guide rates above the positive are dropped as likely false negatives); ``marginmse`` MarginMSELoss on the
   start model's own scores (mining writes them with ``output_scores``: n-tuple rows, labels = the scores of the
   positive and each negative; cosine margins), a self-distillation that keeps the start model's ranking margins;
3. an InformationRetrievalEvaluator before and after training (and every ``--eval-steps``): accuracy, precision,
   recall, MRR, nDCG and MAP at k, named as sentence-transformers names them (``kornli-dev_cosine_ndcg@10``).

The data is the bundled Korean retrieval task by default, built offline from KorNLI (premises as queries, their
entailed hypotheses as relevant documents, every hypothesis in the corpus, so the neutral and contradicting
hypotheses of a premise are its distractors): half the queries (seeded) train, the other half evaluate. Or a
BEIR-format directory (``--beir DIR``: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv), training on its
``--train-split`` and evaluating on its ``--eval-split``. The script builds the same RunConfig as
``kosim/configs/retrieval.toml`` and runs it through the code path of ``kosim train``.

    python scripts/train_retrieval.py --output output/retrieval
    python scripts/train_retrieval.py --loss gist --output output/retrieval-gist
    python scripts/train_retrieval.py --model klue/roberta-base --beir data/ko-strategyqa --eval-split dev --bf16

Progress goes to stderr. The last stdout line is one JSON object:
``{"before": {...}, "after": {...}, "output_dir": ..., "train_seconds": ...}``. The model (sentence-transformers
format) and its model card are saved to ``--output``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kosim.cli.recipe import recipe_parser, row_limits, run_recipe, training_table

DEFAULT_MODEL = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
LOSSES = {"mnrl": "MultipleNegativesRankingLoss", "gist": "GISTEmbedLoss", "marginmse": "MarginMSELoss"}
# Chosen by measurement on the bundled task (MiniLM start model; see the module docstring and README): a window of
# 1000 candidates keeps a negative below the positive-aware margin for most queries, and 3 epochs at 1e-4 move
# nDCG@10 well beyond the noise of 415 dev queries.
RANGE_MAX = 1000
EPOCHS = 3.0
LEARNING_RATE = 1e-4


def _fraction_or_count(value: str) -> float | int:
    try:
        return int(value) if value.isdigit() else float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction or a number of queries, got {value!r}") from None


def _margin(value: str) -> float | None:
    if value.lower() == "none":
        return None
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {value!r}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = recipe_parser(
        __doc__.split("\n\n")[0],
        recipe="retrieval",
        model=DEFAULT_MODEL,
        train_default=None,
        train_help=None,
        batch_size=32,
        warmup_ratio=0.1,
        rows="queries",
        epochs=EPOCHS,
        lr=LEARNING_RATE,
    )
    p.add_argument("--beir", default=None, metavar="DIR", help="a BEIR-format directory (default: bundled KorNLI task)")
    p.add_argument("--train-split", default="train", help="--beir: qrels split to mine and train on (default train)")
    p.add_argument("--eval-split", default="test", help="--beir: qrels split to evaluate on (default test)")
    p.add_argument(
        "--dev-size", type=_fraction_or_count, default=0.5, help="KorNLI task: share (or number) of queries held out"
    )
    p.add_argument("--num-negatives", type=int, default=1, help="mined negatives per query (default 1)")
    p.add_argument(
        "--relative-margin",
        type=_margin,
        default=0.05,
        help="drop candidates scoring above positive - |positive| x m (default 0.05, NV-Retriever); 'none': no "
        "margin filter",
    )
    p.add_argument(
        "--range-max",
        type=int,
        default=RANGE_MAX,
        help=f"consider the top N candidates per query (default {RANGE_MAX}: deep enough to reach below the positive "
        "when the start model ranks it low)",
    )
    p.add_argument(
        "--loss",
        choices=sorted(LOSSES),
        default="mnrl",
        help="mnrl (default), gist (guide: the start model) or marginmse (the start model's mined scores)",
    )
    p.add_argument("--scale", type=float, default=20.0, help="MNRL similarity scale (default 20)")
    p.add_argument("--mini-batch-size", type=int, default=None, help="gradient caching: rows per forward (off)")
    p.add_argument(
        "--eval-steps", type=int, default=1000, help="evaluate (and checkpoint) every N steps (default 1000)"
    )
    p.add_argument("--seed", type=int, default=42, help="random seed of training and of the query split (default 42)")
    return p.parse_args(argv)


def _task(args: argparse.Namespace, split: str) -> dict[str, Any]:
    """The retrieval-task keys of a `[mining]` table or an `ir` evaluator."""
    if args.beir is not None:
        return {"source": "beir", "path": args.beir, "split": args.train_split if split == "train" else args.eval_split}
    return {"source": "kornli", "split": split, "dev_size": args.dev_size, "seed": args.seed}


def _loss_keys(args: argparse.Namespace) -> dict[str, Any]:
    """The `[mining]` keys of the chosen loss: its arguments, the guide, or the scores it learns."""
    if args.loss == "gist":
        return {"guide": args.model}  # a frozen copy of the start model, loaded separately
    if args.loss == "marginmse":
        return {"loss_args": {"similarity": "cosine"}, "output_scores": True, "output_format": "n-tuple"}
    return {"loss_args": {"scale": args.scale, "similarity": "cosine"}}


def build_raw_config(args: argparse.Namespace) -> dict[str, Any]:
    """The run config (the TOML schema of kosim.config) this recipe trains with."""
    train_limit, limit = row_limits(args)
    mining: dict[str, Any] = {
        **_task(args, "train"),
        "num_negatives": args.num_negatives,
        "loss": LOSSES[args.loss],
        **_loss_keys(args),
        **train_limit,
    }
    for key in ("relative_margin", "range_max"):
        if getattr(args, key) is not None:
            mining[key] = getattr(args, key)
    name = "kornli-dev" if args.beir is None else f"{Path(args.beir).name}-{args.eval_split}"
    extra = {"mini_batch_size": args.mini_batch_size} if args.mini_batch_size else {}
    return {
        "model": {"name_or_path": args.model, "max_seq_length": args.max_seq_length},
        "mining": mining,
        "evaluators": [{"type": "ir", "name": name, **_task(args, "dev"), **limit}],
        "training": training_table(
            args,
            "retrieval",
            batch_sampler="no_duplicates",
            eval_strategy="steps",
            eval_steps=args.eval_steps,
            logging_steps=min(500, args.eval_steps),
            save_steps=args.eval_steps,
            **extra,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    return run_recipe(build_raw_config(parse_args(argv)), "train_retrieval")


if __name__ == "__main__":
    sys.exit(main())
