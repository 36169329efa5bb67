"""kosim.config: TOML run configs, parsed with tomllib, validated at the edge into dataclasses, then run end to end.

A run config names a model, one or more training datasets (each with its loss), optional evaluators and
validation-loss datasets, and the ``[training]`` table of :class:`~kosim.config.arguments.TrainingArguments`::

    [model]
    name_or_path = "klue/roberta-base"   # hub id, or a local directory relative to this file
    max_seq_length = 128                 # optional
    pooling = "mean"                     # optional; plain transformers checkpoints only

    [[datasets]]
    name = "nli"
    path = "kosim:KorNLI/xnli.dev.ko.tsv"  # relative to this file; "kosim:" = the bundled KorNLU copy
    format = "kornli_triplets"           # korsts | kornli_triplets | tsv | csv | jsonl
    loss = "MultipleNegativesRankingLoss"
    loss_args = { scale = 20.0 }

    [[evaluators]]
    type = "sts"                         # sts | triplet
    name = "sts-dev"
    path = "kosim:KorSTS/sts-dev.tsv"

    [training]
    output_dir = "output/nli"            # relative to the working directory
    per_device_train_batch_size = 64

Every table rejects unknown keys with a suggestion, and every data path must exist when the config is loaded.
:func:`run` loads the model and data, evaluates before training, trains with the Trainer (which saves the model
and its card to ``output_dir``), and returns ``{"before": metrics, "after": metrics, "output_dir": path}``.

The package: ``schema`` (the dataclasses), ``arguments`` (TrainingArguments), ``table`` / ``parse`` /
``overrides`` / ``files`` (reading and validating), and the parts that need torch, imported only when used:
``runner`` (running a RunConfig), ``scratch`` (a tokenizer and a BERT from scratch) and ``quickstart``.
Importing ``kosim.config`` does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kosim.config.arguments import TrainingArguments
from kosim.config.files import BUNDLED, CONFIGS_DIR, read_toml, resolve_path
from kosim.config.overrides import apply_overrides
from kosim.config.parse import load_config, parse_config
from kosim.config.schema import ConfigError, DatasetConfig, EvaluatorConfig, ModelConfig, RunConfig

__all__ = [
    "BUNDLED",
    "CONFIGS_DIR",
    "ConfigError",
    "DatasetConfig",
    "EvaluatorConfig",
    "ModelConfig",
    "RunConfig",
    "TrainingArguments",
    "apply_overrides",
    "load_config",
    "parse_config",
    "read_toml",
    "resolve_path",
    "run",
]


def run(config: RunConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Load, evaluate before training, train, evaluate after (see :func:`kosim.config.runner.run_config`).

    Returns ``{"before": metrics, "after": metrics, "output_dir": path, "train_seconds": seconds}``; the Trainer
    saves the final model (sentence-transformers format) and its model card to ``output_dir``.
    """
    from kosim.config.runner import run_config  # torch and the Trainer: only when a run starts

    return run_config(config, log)
