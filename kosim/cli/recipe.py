"""What the seed-recipe scripts (`scripts/train_nli.py`, `scripts/train_sts.py`) share: their common flags, the
training table they build, and how they run it through the code path of `kosim train`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from kosim.cli.errors import run_reporting
from kosim.utils.log import stderr_logger
from kosim.utils.ranks import is_main_process


def recipe_parser(
    description: str,
    *,
    recipe: str,
    model: str,
    train_default: str | None,
    train_help: str | None,
    batch_size: int,
    warmup_ratio: float,
    rows: str,
    epochs: float = 1.0,
    lr: float = 5e-5,
) -> argparse.ArgumentParser:
    """The flags the recipes take (a recipe adds its own); `recipe` is the output prefix ("nli", "sts"), `rows`
    names a training row ("pairs", "triplets"). Without `train_help` there are no --train / --dev / --test flags
    (the retrieval recipe names its data otherwise)."""
    from kosim.data import korsts_path

    p = argparse.ArgumentParser(description=description, epilog="see the script's docstring for examples")
    p.add_argument("--model", default=model, help=f"hub id or local directory (default {model})")
    if train_help is not None:
        p.add_argument("--train", default=train_default, help=train_help)
        p.add_argument("--dev", default=str(korsts_path("dev")), help="KorSTS-format dev file (default: bundled)")
        p.add_argument("--test", default=None, help="KorSTS-format test file, evaluated before and after training only")
    p.add_argument("--batch-size", type=int, default=batch_size, help=f"training batch size (default {batch_size})")
    p.add_argument("--eval-batch-size", type=int, default=None, help="evaluation batch size (default: --batch-size)")
    p.add_argument("--epochs", type=float, default=epochs, help=f"training epochs (default {epochs:g})")
    p.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr:g})")
    p.add_argument(
        "--warmup-ratio",
        type=float,
        default=warmup_ratio,
        help=f"linear warm-up share of all steps (default {warmup_ratio:g})",
    )
    p.add_argument("--max-seq-length", type=int, default=128, help="tokens per text (default 128)")
    p.add_argument("--max-train-samples", type=int, default=None, help=f"use only the first N training {rows}")
    p.add_argument(
        "--max-eval-samples", type=int, default=None, help="use only the first N dev/test pairs (retrieval: queries)"
    )
    p.add_argument("--output", default=None, help=f"output directory (default output/{recipe}-MODEL-TIMESTAMP)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--bf16", action="store_true", help="train under bfloat16 autocast")
    precision.add_argument("--fp16", action="store_true", help="train under float16 autocast with loss scaling (CUDA)")
    return p


def row_limits(args: argparse.Namespace) -> tuple[dict[str, int], dict[str, int]]:
    """`max_rows` entries for the training dataset and for the dev/test files (empty when unlimited)."""
    train = {"max_rows": args.max_train_samples} if args.max_train_samples else {}
    evaluation = {"max_rows": args.max_eval_samples} if args.max_eval_samples else {}
    return train, evaluation


def training_table(args: argparse.Namespace, recipe: str, **fields: Any) -> dict[str, Any]:
    """The `[training]` table both recipes share, plus the recipe's own `fields`."""
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    table = {
        "output_dir": args.output or f"output/{recipe}-{Path(args.model.rstrip('/')).name}-{stamp}",
        "per_device_train_batch_size": args.batch_size,
        "per_device_eval_batch_size": args.eval_batch_size or args.batch_size,
        "num_train_epochs": args.epochs,
        "learning_rate": args.lr,
        "warmup_ratio": args.warmup_ratio,
        "lr_scheduler_type": "linear",
        **fields,
        "seed": args.seed,
        "bf16": args.bf16,
        "fp16": args.fp16,
    }
    if args.device:
        table["device"] = args.device
    return table


def add_test_evaluator(raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """With `--test`, also evaluate that file before and after training (not during)."""
    if args.test:
        _, evaluation = row_limits(args)
        raw["evaluators"].append(
            {"type": "sts", "name": "sts-test", "path": args.test, "during_training": False, **evaluation}
        )
    return raw


def run_recipe(raw: dict[str, Any], name: str) -> int:
    """Validate and run a recipe's config; progress to stderr, the metrics as one JSON line on stdout.

    Exit codes as `kosim train` (:mod:`kosim.cli.errors`): 0 done, 2 bad input (config, data, checkpoint, files),
    1 training failed.
    """

    def body() -> int:
        from kosim.config import parse_config, run

        config = parse_config(raw, base_dir=Path.cwd(), source=f"{name}.py")
        result = run(config, log=stderr_logger(name))
        if is_main_process():  # torchrun: one JSON line, from the main process
            print(json.dumps(result, ensure_ascii=False), flush=True)
        return 0

    return run_reporting(name, body)
