"""``kosim train CONFIG.toml``: train from a TOML run config (see :mod:`kosim.config`)."""

from __future__ import annotations

import argparse

from kosim.cli.common import print_json
from kosim.utils.log import log
from kosim.utils.ranks import is_main_process

HELP = "train a model from a TOML run config"
DESCRIPTION = """\
Train a sentence-embedding model from a TOML run config: load the model and data, evaluate before training,
train (saving checkpoints, the final model in sentence-transformers format and its model card to
training.output_dir), evaluate again, and print one JSON line on stdout:
{"before": {metric: value}, "after": {metric: value}, "output_dir": ..., "train_seconds": ...}.
Progress goes to stderr.

CONFIG is a path, or kosim:NAME.toml for a config bundled with kosim (kosim:nli.toml, kosim:sts.toml).
Data paths in the config are relative to its folder; "kosim:..." data paths name the bundled KorNLU copy."""
EPILOG = """\
examples:
  kosim train kosim:sts.toml --override model.name_or_path=klue/bert-base
  kosim train my.toml --override training.learning_rate=1e-4 training.num_train_epochs=2
  kosim train my.toml --override datasets.nli.max_rows=1000 --dry-run"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="TOML run config (a path, or kosim:NAME.toml)")
    parser.add_argument(
        "--override",
        action="extend",
        nargs="+",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help='set a config value before validation; values are TOML (1e-4, true, "text"; bare words are '
        "strings); arrays of tables take an index or a name: datasets.0.max_rows=100, datasets.nli.loss=cosent",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="validate the config, print it resolved as JSON, and exit"
    )


def run(args: argparse.Namespace) -> int:
    from kosim.config import load_config, run

    config = load_config(args.config, args.override)
    if args.dry_run:
        print_json(config.to_dict())
        return 0
    log(f"config {config.source}")
    result = run(config, log=log)
    if is_main_process():  # torchrun: one JSON line, from the main process
        print_json(result)
    return 0
