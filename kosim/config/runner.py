"""Running a validated RunConfig: load the model and data, evaluate, train with the Trainer, evaluate again.

Shared by ``kosim train``, the recipe scripts in ``scripts/`` and :func:`kosim.config.run`. The data is read
(and checked against the batch size) before the model is loaded, so that a data error costs no model load.
Torch-using kosim modules are imported inside the functions: this module is imported only when a run starts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kosim.config.arguments import TrainingArguments
from kosim.config.schema import ConfigError, DatasetConfig, EvaluatorConfig, MiningConfig, ModelConfig, RunConfig
from kosim.utils.log import log as stderr_log
from kosim.utils.ranks import is_main_process

__all__ = [
    "build_evaluator",
    "check_batch_fits",
    "load_dataset",
    "load_model",
    "load_retrieval_task",
    "mine_dataset",
    "run_config",
]


def load_model(cfg: ModelConfig, source: str = "<config>"):
    """The SentenceEncoder a run starts from, with the config's sequence length and pooling applied."""
    from kosim.model import SentenceEncoder
    from kosim.nn import resolve_model_dir
    from kosim.pooling import Pooling
    from kosim.st_format import read_modules

    model_dir = resolve_model_dir(cfg.name_or_path, trust_remote_code=cfg.trust_remote_code)
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
    from kosim.data import read_kornli_pairs, read_kornli_triplets, read_korsts, read_table

    if cfg.format == "korsts":
        data = read_korsts(cfg.path, name=cfg.name)
    elif cfg.format == "kornli_pairs":
        data = read_kornli_pairs(cfg.path, name=cfg.name)
    elif cfg.format == "kornli_triplets":
        data = read_kornli_triplets(cfg.path, seed=getattr(cfg, "seed", 42), name=cfg.name)
    else:
        data = read_table(cfg.path, columns=cfg.columns, format=cfg.format, label=cfg.label, name=cfg.name)
    return data.head(cfg.max_rows) if cfg.max_rows is not None else data


def load_retrieval_task(cfg: EvaluatorConfig | MiningConfig, name: str | None = None):
    """The RetrievalTask an ``ir`` evaluator or ``[mining]`` table names (its first ``max_rows`` queries)."""
    from kosim.data import RetrievalTask, kornli_retrieval_task, load_beir

    source = cfg.format if isinstance(cfg, EvaluatorConfig) else cfg.source
    if source == "kornli":
        task = kornli_retrieval_task(cfg.split, cfg.dev_size, cfg.seed, cfg.path)
    else:
        task = load_beir(cfg.path, cfg.split)
    if cfg.max_rows is not None and cfg.max_rows < len(task.queries):
        queries = dict(list(task.queries.items())[: cfg.max_rows])
        task = RetrievalTask(queries, task.corpus, {q: task.relevant_docs[q] for q in queries}, task.name)
    return task if name is None else RetrievalTask(task.queries, task.corpus, task.relevant_docs, name)


def mine_dataset(
    cfg: MiningConfig,
    model,
    output_dir: str | Path,
    log: Callable[[str], None] = stderr_log,
    source: str = "<config>",
):
    """Mine hard negatives for the task's (query, positive) pairs with ``model`` over the task's whole corpus, write
    them to ``output_dir/mined-{name}.jsonl`` (embeddings cached in ``output_dir/mining-cache``, so a restarted run
    does not encode again) and return them as the training ColumnDataset ``cfg.name``."""
    from kosim.mining import mine_hard_negatives, to_column_dataset, write_mined

    task = load_retrieval_task(cfg)
    out = Path(output_dir)
    log(f"mining hard negatives for {len(task.queries)} queries of {task.name} over {len(task.corpus)} documents")
    options = dict(cfg.options)
    if options.get("sampling_strategy") == "random":
        options["seed"] = cfg.seed
    mined = mine_hard_negatives(
        task.pairs(),
        model,
        corpus=list(task.corpus.values()),
        cache_dir=out / "mining-cache",
        verbose=is_main_process(),
        **options,
    )
    if not mined or not next(iter(mined.values())):
        raise ConfigError(f"{source}: [mining]: no hard negative survived the filters for {task.name}; loosen them")
    if is_main_process():
        log(f"mined rows -> {write_mined(mined, out / f'mined-{cfg.name}.jsonl')}")
    return to_column_dataset(mined, label="scores" if cfg.options.get("output_scores") else None, name=cfg.name)


def build_evaluator(cfg: EvaluatorConfig, batch_size: int) -> Callable:
    """An EmbeddingSimilarityEvaluator (``sts``), TripletEvaluator (``triplet``) over the entry's file, or an
    InformationRetrievalEvaluator (``ir``) over its retrieval task."""
    from kosim.evaluation import EmbeddingSimilarityEvaluator, TripletEvaluator

    size = cfg.batch_size or batch_size
    if cfg.type == "ir":
        return load_retrieval_task(cfg).evaluator(batch_size=size, name=cfg.name, **cfg.options)
    data = load_dataset(cfg)
    cols = [data.column(c) for c in data.column_names]
    if cfg.type == "sts":
        if len(cols) != 2 or data.labels is None:
            raise ConfigError(f"[[evaluators]] {cfg.name!r}: {cfg.path} must give 2 text columns and a score")
        return EmbeddingSimilarityEvaluator(
            *cols, data.labels.tolist(), size, cfg.name, cfg.similarity_fns, main_similarity=cfg.main_similarity
        )
    if len(cols) != 3:
        raise ConfigError(f"[[evaluators]] {cfg.name!r}: {cfg.path} must give 3 text columns")
    return TripletEvaluator(
        *cols, batch_size=size, name=cfg.name, similarity_fns=cfg.similarity_fns, main_similarity=cfg.main_similarity
    )


def check_batch_fits(config: RunConfig, rows: dict[str, int]) -> None:
    """With ``dataloader_drop_last``, every training dataset must fill one batch (of all processes together)."""
    args: TrainingArguments = config.training
    if not args.dataloader_drop_last:
        return
    world = int(os.environ.get("WORLD_SIZE", "1"))  # torchrun: the sampler draws one batch for all processes
    batch = args.per_device_train_batch_size * world
    for d in config.datasets:
        if rows[d.name] < batch:
            per = f" ({args.per_device_train_batch_size} per device x {world} processes)" if world > 1 else ""
            raise ConfigError(
                f"{config.source}: [[datasets]] {d.name!r}: {d.path} has {rows[d.name]} rows, fewer than one batch "
                f"of {batch}{per}, and [training] dataloader_drop_last = true would drop them all; lower "
                "per_device_train_batch_size or set dataloader_drop_last = false"
            )


def _check_mined_fits(config: RunConfig, rows: int) -> None:
    args = config.training
    batch = args.per_device_train_batch_size * int(os.environ.get("WORLD_SIZE", "1"))
    if args.dataloader_drop_last and rows < batch:
        raise ConfigError(
            f"{config.source}: [mining] {config.mining.name!r}: {rows} mined rows, fewer than one batch of {batch}, "
            "and [training] dataloader_drop_last = true would drop them all"
        )


def run_config(config: RunConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Load, evaluate before training, train, evaluate after: ``{"before", "after", "output_dir", "train_seconds"}``.

    The Trainer saves the final model (sentence-transformers format) and its model card to ``output_dir``.
    Evaluators with ``during_training = false`` run only before and after training.
    """
    from kosim.losses import build_loss
    from kosim.training import Trainer
    from kosim.utils.device import resolve_device

    log = log or stderr_log
    args = config.training
    device = resolve_device(args.device)
    train = {d.name: load_dataset(d) for d in config.datasets}
    check_batch_fits(config, {name: len(data) for name, data in train.items()})
    mining = config.mining
    for d in config.datasets:
        log(f"dataset {d.name!r}: {len(train[d.name])} rows {train[d.name].column_names} -> {d.loss}")
    eval_data = {d.name: load_dataset(d) for d in config.eval_datasets}
    evaluators = [(e, build_evaluator(e, args.per_device_eval_batch_size)) for e in config.evaluators]
    model = load_model(config.model, config.source)
    log(f"model {config.model.name_or_path}: {model.embedding_dim}-d, max_seq_length {model.max_seq_length}")
    losses = {d.name: build_loss(d.loss, model=model, **d.loss_args) for d in config.datasets}  # dims from the model
    guides = {d.name: d.guide for d in config.datasets if d.guide is not None}
    if mining is not None and mining.guide is not None:
        guides[mining.name] = mining.guide
    teachers = {d.name: d.teacher for d in config.datasets if d.teacher is not None}
    frozen = set(guides.values()) | set(teachers.values())  # each guide / teacher model loaded once
    guide_models = {g: load_model(ModelConfig(g), config.source) for g in frozen}
    if mining is not None:  # hard negatives from the start model become a training dataset
        model.to(device)
        train[mining.name] = mine_dataset(mining, model, args.output_dir, log, config.source)
        losses[mining.name] = build_loss(mining.loss, model=model, **mining.loss_args)
        _check_mined_fits(config, len(train[mining.name]))
        log(f"dataset {mining.name!r}: {len(train[mining.name])} mined rows {train[mining.name].column_names}")
    trainer = Trainer(
        model,
        args,
        train,
        losses,
        eval_dataset=eval_data or None,
        evaluator=[ev for e, ev in evaluators if e.during_training] or None,
        base_model=config.model.name_or_path,
        guide={name: guide_models[g] for name, g in guides.items()} or None,
        guide_source=guides,
        teacher={name: guide_models[t] for name, t in teachers.items()} or None,
        teacher_source=teachers,
    )
    model.to(device)

    main_process = is_main_process()
    before: dict[str, float] = {}
    if main_process and (evaluators or eval_data):
        log("evaluating before training")
        before.update(trainer.eval_round([evaluator for _, evaluator in evaluators]))  # also the not-during ones
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
