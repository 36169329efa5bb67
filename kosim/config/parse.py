"""Parsing a run config: each table validated into its dataclass, with messages naming the file, table and key."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

from kosim.config.arguments import REMOVED, TrainingArguments
from kosim.config.files import config_file, read_toml, resolve_path
from kosim.config.overrides import apply_overrides
from kosim.config.retrieval import parse_ir_evaluator, parse_mining
from kosim.config.schema import (
    EVALUATOR_TYPES,
    FIXED_COLUMNS,
    FORMATS,
    ConfigError,
    DatasetConfig,
    EvaluatorConfig,
    ModelConfig,
    RunConfig,
)
from kosim.config.table import MISSING, Table
from kosim.utils.suggest import did_you_mean

__all__ = ["load_config", "parse_config"]


def _data_path(table: Table, base_dir: Path) -> Path:
    value = table.get("path", (str,))
    path = resolve_path(value, base_dir)
    if not path.is_file():
        raise table.error("path", f"file not found: {path}" + (f" (given {value!r})" if str(path) != value else ""))
    return path


def _columns(table: Table, fmt: str) -> tuple[list[str] | None, str | list[str] | None]:
    """The text columns and the label: a name, or a list of names read together as a vector label per row."""
    columns, label = table.strings("columns"), table.get("label", (str, list), None)
    if isinstance(label, list):
        label = table.strings("label")
    if fmt in FIXED_COLUMNS and (columns is not None or label is not None):
        fixed, has_label = FIXED_COLUMNS[fmt]
        raise table.error(
            "columns" if columns is not None else "label",
            f"format {fmt!r} has fixed columns {fixed}{' and a score label' if has_label else ''}; "
            "use format 'tsv', 'csv' or 'jsonl' to pick columns",
        )
    return columns, label


_DATASET_KEYS = (
    "name", "path", "format", "columns", "label", "max_rows", "seed", "loss", "loss_args", "guide", "teacher",
)  # fmt: skip


def _parse_dataset(raw: Any, where: str, source: str, base_dir: Path, with_loss: bool) -> DatasetConfig:
    keys = _DATASET_KEYS if with_loss else _DATASET_KEYS[:-4]
    if not with_loss and isinstance(raw, dict) and ("loss" in raw or "loss_args" in raw):
        raise ConfigError(
            f"{source}: {where} has no 'loss' key: a validation dataset uses the loss of the training dataset "
            "with the same name (else the first training dataset's loss)"
        )
    t = Table(raw, where, source, keys)
    name = t.get("name", (str,))
    t.where = f"{where.split(' #')[0]} {name!r}"
    fmt = t.get("format", (str,), choices=FORMATS)
    columns, label = _columns(t, fmt)
    cfg = DatasetConfig(
        name=name,
        path=_data_path(t, base_dir),
        format=fmt,
        columns=columns,
        label=label,
        max_rows=t.get("max_rows", (int,), None),
        seed=t.get("seed", (int,), 42),
    )
    if with_loss:
        from kosim.losses import check_loss, needs_guide
        from kosim.losses.guide import takes_teacher

        cfg.loss = t.get("loss", (str,))
        cfg.loss_args = t.get("loss_args", (dict,), {})
        try:
            loss = check_loss(cfg.loss, **cfg.loss_args)
        except (TypeError, ValueError) as exc:
            raise t.error("loss", str(exc)) from None
        cfg.guide = _model_name(t.get("guide", (str,), None), base_dir)
        if needs_guide(loss) and cfg.guide is None:
            raise t.error("loss", f'{cfg.loss} needs a guide model: add guide = "model directory or hub id"')
        if cfg.guide is not None and not needs_guide(loss):
            raise t.error("guide", f"{cfg.loss} takes no guide model (only GISTEmbedLoss does)")
        cfg.teacher = _model_name(t.get("teacher", (str,), None), base_dir)
        if cfg.teacher is not None and not takes_teacher(loss):
            raise t.error("teacher", f"{cfg.loss} takes no teacher model (only MSELoss does)")
        if cfg.teacher is not None and label is not None:
            raise t.error("teacher", "MSELoss learns the label (teacher embeddings) or a teacher model's, not both")
    return cfg


def _model_name(name: str | None, base_dir: Path) -> str | None:
    """A model directory (resolved; relative to the config's directory first) or, when no such directory exists,
    a hub id."""
    for local in () if name is None else (base_dir / Path(name).expanduser(), Path(name).expanduser()):
        if local.is_dir():
            return str(local.resolve())
    return name


_EVALUATOR_KEYS = (
    "type", "name", "path", "format", "columns", "label", "max_rows", "batch_size", "similarity_fns", "main_similarity",
    "during_training",
)  # fmt: skip


def _similarity(t: Table, key: str, name: str) -> str:
    """The canonical name of similarity ``name`` (``cos_sim`` -> ``cosine``), or an error on ``key`` with a hint."""
    from kosim.similarity import SIMILARITY_FUNCTIONS, resolve_similarity

    try:
        return resolve_similarity(name)
    except (TypeError, ValueError) as exc:
        raise t.error(key, f"{exc}{did_you_mean(str(name), sorted(SIMILARITY_FUNCTIONS))}") from None


def _similarities(t: Table) -> tuple[list[str], str | None]:
    """``(similarity_fns, main_similarity)`` of an sts / triplet evaluator: the main one must be computed; without
    ``similarity_fns`` it is the only one (as the evaluators do), else ``["cosine"]``."""
    given = t.strings("similarity_fns")
    canonical = [_similarity(t, "similarity_fns", s) for s in given or ()]
    main = t.get("main_similarity", (str,), None)
    if main is None:
        return (given if given is not None else ["cosine"]), None
    main = _similarity(t, "main_similarity", main)
    if given is None:
        return [main], main
    if main not in canonical:
        raise t.error("main_similarity", f"{main!r} is not one of similarity_fns {given}")
    return given, main


def _parse_evaluator(raw: Any, where: str, source: str, base_dir: Path) -> EvaluatorConfig:
    if isinstance(raw, dict) and raw.get("type") == "ir":
        return parse_ir_evaluator(raw, where, source, base_dir)
    t = Table(raw, where, source, _EVALUATOR_KEYS)
    kind = t.get("type", (str,), choices=(*EVALUATOR_TYPES, "ir"))
    default_format, n_columns, needs_label = EVALUATOR_TYPES[kind]
    name = t.get("name", (str,), f"{kind}-eval")
    t.where = f"{where.split(' #')[0]} {name!r}"
    fmt = t.get("format", (str,), default_format, choices=FORMATS)
    columns, label = _columns(t, fmt)
    fixed = FIXED_COLUMNS.get(fmt)
    if fixed is not None and (len(fixed[0]) != n_columns or fixed[1] != needs_label):
        raise t.error("format", f"a {kind!r} evaluator cannot read format {fmt!r}")
    if columns is not None and len(columns) != n_columns:
        raise t.error("columns", f"a {kind!r} evaluator needs {n_columns} columns, got {columns}")
    if fixed is None and needs_label and label is None:
        raise t.error("label", f"a {kind!r} evaluator needs a score column ('label')")
    sims, main = _similarities(t)
    return EvaluatorConfig(
        type=kind,
        name=name,
        path=_data_path(t, base_dir),
        format=fmt,
        columns=columns,
        label=label,
        max_rows=t.get("max_rows", (int,), None),
        batch_size=t.get("batch_size", (int,), None),
        similarity_fns=sims,
        main_similarity=main,
        during_training=t.get("during_training", (bool,), True),
    )


def _parse_model(raw: Any, source: str, base_dir: Path) -> ModelConfig:
    t = Table(raw, "[model]", source, ("name_or_path", "max_seq_length", "pooling", "trust_remote_code"))
    name = _model_name(t.get("name_or_path", (str,)), base_dir)
    pooling = t.strings("pooling")
    if pooling is not None:
        from kosim.st_format import POOLING_MODES

        for mode in pooling:
            if mode not in POOLING_MODES:
                raise t.error("pooling", f"unknown pooling mode {mode!r}; expected one of {list(POOLING_MODES)}")
    return ModelConfig(name, t.get("max_seq_length", (int,), None), pooling, t.get("trust_remote_code", (bool,), False))


def _parse_training(raw: Any, source: str) -> TrainingArguments:
    for key in raw if isinstance(raw, dict) else ():
        if key in REMOVED:
            raise ConfigError(f"{source}: [training] {key}: not supported: {REMOVED[key]}")
    Table(raw, "[training]", source, [f.name for f in fields(TrainingArguments) if f.name != "card_notes"])
    try:
        args = TrainingArguments(**raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: [training] {exc}") from None
    if args.fp16:  # checked here, before the Trainer writes anything to output_dir
        from kosim.utils.device import resolve_device

        device = resolve_device(args.device)
        if device.type != "cuda":
            raise ConfigError(
                f"{source}: [training] fp16: fp16 training needs a CUDA device, and this run would train on "
                f'{device.type!r}; use bf16 = true (or "auto") on CPU'
            )
    return args


def _check_prompt_datasets(prompts: Any, names: list[str], source: str) -> None:
    """A ``[training.prompts.NAME]`` table must name a dataset (columns are checked once the data is read)."""
    for key, value in prompts.items() if isinstance(prompts, dict) else ():
        if isinstance(value, dict) and key not in names:
            raise ConfigError(
                f"{source}: [training] prompts.{key}: {key!r} is not a dataset of this config; datasets are "
                f"{names}{did_you_mean(key, names)}"
            )


def parse_config(raw: dict[str, Any], base_dir: str | os.PathLike | None = None, source: str = "<config>") -> RunConfig:
    """Validate a config mapping (a parsed TOML document) into a :class:`RunConfig`; relative paths use ``base_dir``."""
    base = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    top = Table(raw, "", source, ("model", "datasets", "eval_datasets", "evaluators", "training", "mining"))
    top.get("model", (dict,))
    mining = parse_mining(raw["mining"], source, base) if "mining" in raw else None
    datasets_raw = top.get("datasets", (list,), [] if mining is not None else MISSING)
    if not datasets_raw and mining is None:
        raise ConfigError(f"{source}: [[datasets]] needs at least one training dataset (or a [mining] table)")
    datasets = [_parse_dataset(d, f"[[datasets]] #{i + 1}", source, base, True) for i, d in enumerate(datasets_raw)]
    evals = top.get("eval_datasets", (list,), [])
    eval_datasets = [_parse_dataset(d, f"[[eval_datasets]] #{i + 1}", source, base, False) for i, d in enumerate(evals)]
    evaluators = [
        _parse_evaluator(e, f"[[evaluators]] #{i + 1}", source, base)
        for i, e in enumerate(top.get("evaluators", (list,), []))
    ]
    if mining is not None and mining.name in [d.name for d in datasets]:
        raise ConfigError(f"{source}: [mining] name: {mining.name!r} is also a [[datasets]] name")
    for what, items in (("datasets", datasets), ("eval_datasets", eval_datasets), ("evaluators", evaluators)):
        names = [item.name for item in items]
        if len(set(names)) != len(names):
            raise ConfigError(f"{source}: [[{what}]] names must be unique, got {names}")
    training = _parse_training(top.get("training", (dict,), {}), source)
    _check_prompt_datasets(training.prompts, [d.name for d in datasets + eval_datasets], source)
    return RunConfig(
        model=_parse_model(raw["model"], source, base),
        datasets=datasets,
        training=training,
        evaluators=evaluators,
        eval_datasets=eval_datasets,
        source=source,
        mining=mining,
    )


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> RunConfig:
    """Read and validate a TOML run config; ``kosim:NAME.toml`` names a config bundled in ``kosim/configs``."""
    file = config_file(path)
    raw = apply_overrides(read_toml(file), overrides)
    return parse_config(raw, base_dir=file.parent, source=str(file))
