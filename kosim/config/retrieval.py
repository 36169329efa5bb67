"""Parsing the retrieval parts of a run config: ``[[evaluators]] type = "ir"`` and the ``[mining]`` table.

Both name a retrieval task the same way: ``source = "kornli"`` (the bundled task built from KorNLI, see
:func:`kosim.data.kornli_retrieval_task`; ``split`` all / train / dev of a ``dev_size`` / ``seed`` split, ``path``
an optional KorNLI-format tsv) or ``source = "beir"`` with ``path`` a BEIR directory and ``split`` one of its
``qrels/<split>.tsv`` (``source`` defaults to ``"beir"`` when ``path`` is given). Everything is checked here,
without torch, so that a bad option fails before any model or data is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kosim.config.files import resolve_path
from kosim.config.schema import (
    IR_SCORE_FUNCTIONS,
    MINED_FORMATS,
    RETRIEVAL_SOURCES,
    EvaluatorConfig,
    MiningConfig,
)
from kosim.config.table import Table

__all__ = ["parse_ir_evaluator", "parse_mining"]

KORNLI_SPLITS = ("all", "train", "dev")
_TASK_KEYS = ("source", "path", "split", "dev_size", "seed", "max_rows")
_PROMPT_KEYS = ("query_prompt", "query_prompt_name", "corpus_prompt", "corpus_prompt_name")
_IR_K_KEYS = ("mrr_at_k", "ndcg_at_k", "accuracy_at_k", "precision_recall_at_k", "map_at_k")
IR_KEYS = (
    "type", "name", *_TASK_KEYS, "batch_size", "during_training", *_IR_K_KEYS, "score_functions",
    "main_score_function", *_PROMPT_KEYS, "corpus_chunk_size", "truncate_dim",
)  # fmt: skip
_MINING_NUMBERS = ("max_score", "min_score", "absolute_margin", "relative_margin")
MINING_KEYS = (
    *_TASK_KEYS, "name", "loss", "loss_args", "num_negatives", "range_min", "range_max", *_MINING_NUMBERS,
    "sampling_strategy", "output_format", "output_scores", "batch_size", *_PROMPT_KEYS, "guide",
)  # fmt: skip


def _positive(t: Table, key: str) -> int | None:
    value = t.get(key, (int,), None)
    if value is not None and value < 1:
        raise t.error(key, f"must be a positive integer, got {value}")
    return value


def _task_source(
    t: Table, base_dir: Path, default_split: str, kornli_only: tuple[str, ...] = ("dev_size", "seed")
) -> tuple[str, Path | None, str, float | int, int]:
    """``(source, path, split, dev_size, seed)`` of a retrieval task, each checked against the source."""
    given = t.get("path", (str,), None)
    source = t.get("source", (str,), "beir" if given is not None else None, choices=RETRIEVAL_SOURCES)
    if source is None:
        raise t.error("source", f"missing: name the task with source = {list(RETRIEVAL_SOURCES)} (beir with a path)")
    path = resolve_path(given, base_dir) if given is not None else None
    if source == "beir":
        if path is None:
            raise t.error("path", "source 'beir' needs path = a BEIR directory (corpus.jsonl, queries.jsonl, qrels/)")
        if not path.is_dir():
            raise t.error(
                "path", f"not a directory: {path} (a BEIR directory holds corpus.jsonl, queries.jsonl, qrels/)"
            )
        for key in kornli_only:
            if key in t.raw:
                raise t.error(key, "applies to source 'kornli' only (a BEIR directory has its own qrels splits)")
        split = t.get("split", (str,), "test" if default_split == "dev" else default_split)
        qrels = path / "qrels"
        if not (qrels / f"{split}.tsv").is_file():
            found = sorted(p.stem for p in qrels.glob("*.tsv")) if qrels.is_dir() else []
            raise t.error("split", f"{qrels / (split + '.tsv')} not found; qrels splits in {path}: {found or 'none'}")
        return source, path, split, 0.5, t.get("seed", (int,), 42)
    if path is not None and not path.is_file():
        raise t.error("path", f"file not found: {path} (source 'kornli' reads a KorNLI-format tsv)")
    split = t.get("split", (str,), default_split, choices=KORNLI_SPLITS)
    dev_size = t.get("dev_size", (int, float), 0.5)
    if isinstance(dev_size, float) and not 0.0 < dev_size < 1.0:
        raise t.error("dev_size", f"a fraction must be in (0, 1), got {dev_size}")
    if isinstance(dev_size, int) and dev_size < 1:
        raise t.error("dev_size", f"a number of queries must be at least 1, got {dev_size}")
    return source, path, split, dev_size, t.get("seed", (int,), 42)


def _prompts(t: Table) -> dict[str, str]:
    out = {key: t.get(key, (str,)) for key in _PROMPT_KEYS if key in t.raw}
    for side in ("query", "corpus"):
        if f"{side}_prompt" in out and f"{side}_prompt_name" in out:
            raise t.error(f"{side}_prompt", f"give {side}_prompt or {side}_prompt_name, not both")
    return out


def _ks(t: Table, key: str) -> list[int] | None:
    value = t.get(key, (list,), None)
    if value is not None and (
        not value or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in value)
    ):
        raise t.error(key, f"expected a non-empty array of positive integers, got {value!r}")
    return value


def parse_ir_evaluator(raw: dict[str, Any], where: str, source: str, base_dir: Path) -> EvaluatorConfig:
    """One ``[[evaluators]] type = "ir"`` entry: the task it reads and the evaluator's options."""
    t = Table(raw, where, source, IR_KEYS)
    name = t.get("name", (str,), "ir-eval")
    t.where = f"{where.split(' #')[0]} {name!r}"
    kind, path, split, dev_size, seed = _task_source(t, base_dir, "dev")
    options: dict[str, Any] = {key: value for key in _IR_K_KEYS if (value := _ks(t, key)) is not None}
    functions = t.strings("score_functions")
    for fn in functions or ():
        if fn not in IR_SCORE_FUNCTIONS:
            raise t.error(
                "score_functions", f"unknown score function {fn!r}; expected some of {list(IR_SCORE_FUNCTIONS)}"
            )
    if functions is not None:
        options["score_functions"] = list(dict.fromkeys(functions))
    main = t.get("main_score_function", (str,), None, choices=IR_SCORE_FUNCTIONS)
    if main is not None:
        if functions is not None and main not in functions:
            raise t.error("main_score_function", f"{main!r} is not one of score_functions {functions}")
        options["main_score_function"] = main
    for key in ("corpus_chunk_size", "truncate_dim"):
        if (value := _positive(t, key)) is not None:
            options[key] = value
    options.update(_prompts(t))
    return EvaluatorConfig(
        type="ir",
        name=name,
        path=path,
        format=kind,
        max_rows=t.get("max_rows", (int,), None),
        batch_size=t.get("batch_size", (int,), None),
        similarity_fns=list(options.get("score_functions", [])),
        during_training=t.get("during_training", (bool,), True),
        split=split,
        dev_size=dev_size,
        seed=seed,
        options=options,
    )


def parse_mining(raw: Any, source: str, base_dir: Path) -> MiningConfig:
    """The ``[mining]`` table: the task whose pairs are mined, the mining options, and the loss to train with.

    ``seed`` is the kornli split's seed and the seed of ``sampling_strategy = "random"``."""
    t = Table(raw, "[mining]", source, MINING_KEYS)
    kind, path, split, dev_size, seed = _task_source(t, base_dir, "train", kornli_only=("dev_size",))
    options: dict[str, Any] = {}
    for key in ("num_negatives", "range_max", "batch_size"):
        if (value := _positive(t, key)) is not None:
            options[key] = value
    range_min = t.get("range_min", (int,), 0)
    if range_min < 0:
        raise t.error("range_min", f"must be 0 or more, got {range_min}")
    options["range_min"] = range_min
    for key in _MINING_NUMBERS:
        if (value := t.get(key, (float,), None)) is not None:
            options[key] = value
    options["sampling_strategy"] = t.get("sampling_strategy", (str,), "top", choices=("top", "random"))
    options["output_format"] = t.get("output_format", (str,), "triplet", choices=MINED_FORMATS)
    if t.get("output_scores", (bool,), False):
        options["output_scores"] = True
    options.update(_prompts(t))
    cfg = MiningConfig(
        source=kind,
        path=path,
        split=split,
        dev_size=dev_size,
        seed=seed,
        max_rows=t.get("max_rows", (int,), None),
        name=t.get("name", (str,), "mined"),
        loss=t.get("loss", (str,), "MultipleNegativesRankingLoss"),
        loss_args=t.get("loss_args", (dict,), {}),
        options=options,
    )
    from kosim.config.parse import _model_name
    from kosim.losses import MarginMSELoss, check_loss, needs_guide

    try:
        loss = check_loss(cfg.loss, **cfg.loss_args)
    except (TypeError, ValueError) as exc:
        raise t.error("loss", str(exc)) from None
    cfg.guide = _model_name(t.get("guide", (str,), None), base_dir)
    if needs_guide(loss) and cfg.guide is None:
        raise t.error(
            "loss", f'{cfg.loss} needs a guide model: add guide = "model directory or hub id" (e.g. the start model)'
        )
    if cfg.guide is not None and not needs_guide(loss):
        raise t.error("guide", f"{cfg.loss} takes no guide model (only GISTEmbedLoss does)")
    if isinstance(loss, MarginMSELoss) != bool(options.get("output_scores")):
        raise t.error(
            "output_scores",
            "MarginMSELoss learns the start model's scores of the mined rows: set output_scores = true"
            if isinstance(loss, MarginMSELoss)
            else f"the mined scores are labels only MarginMSELoss learns, not {cfg.loss}; drop output_scores",
        )
    return cfg
