"""Running a validated RunConfig: load the model and data, evaluate, train with the Trainer, evaluate again.

Shared by ``kosim train``, the recipe scripts in ``scripts/`` and :func:`kosim.config.run`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kosim.config import ConfigError, DatasetConfig, EvaluatorConfig, ModelConfig, RunConfig

__all__ = ["build_evaluator", "load_dataset", "load_model", "run_config"]


def _stderr(message: str) -> None:
    print(f"kosim: {message}", file=sys.stderr, flush=True)


def load_model(cfg: ModelConfig, source: str = "<config>"):
    """The SentenceEncoder a run starts from, with the config's sequence length and pooling applied."""
    from kosim.model import SentenceEncoder
    from kosim.nn import resolve_model_dir
    from kosim.pooling import Pooling
    from kosim.st_format import read_modules

    model_dir = resolve_model_dir(cfg.name_or_path)
    if cfg.pooling is not None and read_modules(model_dir) is not None:
        raise ConfigError(
            f"{source}: [model] pooling: {cfg.name_or_path} is a sentence-transformers model with its own pooling"
        )
    model = SentenceEncoder.load(model_dir, trust_remote_code=cfg.trust_remote_code)
    if cfg.pooling is not None:
        model.pooling = Pooling(model.encoder.hidden_size, cfg.pooling)
    if cfg.max_seq_length is not None:
        try:
            model.max_seq_length = cfg.max_seq_length
        except ValueError as exc:
            raise ConfigError(f"{source}: [model] max_seq_length: {exc}") from None
    return model


def load_dataset(cfg: DatasetConfig | EvaluatorConfig):
    """The ColumnDataset a dataset or evaluator entry describes (first ``max_rows`` rows)."""
    from kosim.data import ColumnDataset, read_kornli_triplets, read_korsts

    if cfg.format == "korsts":
        data = read_korsts(cfg.path, name=cfg.name)
    elif cfg.format == "kornli_triplets":
        data = read_kornli_triplets(cfg.path, seed=getattr(cfg, "seed", 42), name=cfg.name)
    else:
        reader = {"tsv": ColumnDataset.from_tsv, "csv": ColumnDataset.from_csv, "jsonl": ColumnDataset.from_jsonl}
        data = reader[cfg.format](cfg.path, columns=cfg.columns, label=cfg.label, name=cfg.name)
    return data.head(cfg.max_rows) if cfg.max_rows is not None else data


def build_evaluator(cfg: EvaluatorConfig, batch_size: int) -> Callable:
    """An EmbeddingSimilarityEvaluator (``sts``) or TripletEvaluator (``triplet``) over the entry's file."""
    from kosim.evaluation import EmbeddingSimilarityEvaluator, TripletEvaluator

    data = load_dataset(cfg)
    cols = [data.column(c) for c in data.column_names]
    size = cfg.batch_size or batch_size
    if cfg.type == "sts":
        if len(cols) != 2 or data.labels is None:
            raise ConfigError(f"[[evaluators]] {cfg.name!r}: {cfg.path} must give 2 text columns and a score")
        return EmbeddingSimilarityEvaluator(*cols, data.labels.tolist(), size, cfg.name, cfg.similarity_fns)
    if len(cols) != 3:
        raise ConfigError(f"[[evaluators]] {cfg.name!r}: {cfg.path} must give 3 text columns")
    return TripletEvaluator(*cols, batch_size=size, name=cfg.name, similarity_fns=cfg.similarity_fns)


def run_config(config: RunConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Load, evaluate before training, train, evaluate after: ``{"before", "after", "output_dir", "train_seconds"}``.

    The Trainer saves the final model (sentence-transformers format) and its model card to ``output_dir``.
    Evaluators with ``during_training = false`` run only before and after training.
    """
    import torch

    from kosim.losses import build_loss
    from kosim.training import Trainer

    log = log or _stderr
    args = config.training
    model = load_model(config.model, config.source)
    log(f"model {config.model.name_or_path}: {model.embedding_dim}-d, max_seq_length {model.max_seq_length}")
    train = {d.name: load_dataset(d) for d in config.datasets}
    losses = {d.name: build_loss(d.loss, **d.loss_args) for d in config.datasets}
    for d in config.datasets:
        log(f"dataset {d.name!r}: {len(train[d.name])} rows {train[d.name].column_names} -> {d.loss}")
    eval_data = {d.name: load_dataset(d) for d in config.eval_datasets}
    evaluators = [(e, build_evaluator(e, args.per_device_eval_batch_size)) for e in config.evaluators]
    trainer = Trainer(
        model,
        args,
        train,
        losses,
        eval_dataset=eval_data or None,
        evaluator=[ev for e, ev in evaluators if e.during_training] or None,
        base_model=config.model.name_or_path,
    )
    if args.device:
        device = torch.device(args.device)
    elif torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    else:
        device = torch.device("cpu")
    model.to(device)

    main_process = os.environ.get("RANK", "0") == "0"
    before: dict[str, float] = {}
    if main_process and (evaluators or eval_data):
        log("evaluating before training")
        before.update(trainer.validation_loss())
        for _, evaluator in evaluators:
            before.update(evaluator(model))
        log(f"before: {before}")
    log(f"training -> {args.output_dir}")
    start = time.perf_counter()
    after = dict(trainer.train())
    seconds = time.perf_counter() - start
    if main_process:
        for e, evaluator in evaluators:
            if not e.during_training:
                after.update(evaluator(model))
        log(f"after: {after}")
    return {
        "before": before,
        "after": after,
        "output_dir": str(Path(args.output_dir).resolve()),
        "train_seconds": seconds,
    }
