"""Gathering a model card's values: the ``README.md`` the Trainer saves next to a model.

Every value is computed from the run: dataset sizes and token statistics, loss parameters, hyperparameters, the
training log and the final evaluation metrics. The YAML front matter carries the Hugging Face Hub metadata (tags,
widget examples, ``model-index``) so the directory reads as a sentence-transformers model on the Hub. This file
gathers the values; :mod:`kosim.card.template` lays them out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

import kosim.card.template as tpl  # not "from kosim.card import": that names the package, which imports this file
from kosim.card.architecture import architecture
from kosim.st_format import versions

if TYPE_CHECKING:  # the card reads these through their public attributes only
    from kosim.config.arguments import TrainingArguments
    from kosim.data.datasets import ColumnDataset
    from kosim.model import SentenceEncoder

__all__ = ["build_model_card", "column_stats", "evaluator_metrics", "log_rows", "widget_examples"]

STATS_ROWS = 1000
LOSS_DOCS = "https://sbert.net/docs/package_reference/sentence_transformer/losses.html#"
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
# (task type, task name) for the Hub's model-index, by evaluator class name.
EVALUATOR_TASKS = {
    "EmbeddingSimilarityEvaluator": ("semantic-similarity", "Semantic Similarity"),
    "TripletEvaluator": ("triplet", "Triplet"),
    "InformationRetrievalEvaluator": ("information-retrieval", "Information Retrieval"),
}
MAX_LOG_ROWS = 200
HIDDEN_ARGS = ("output_dir",)  # local paths: not part of the recipe


# ------------------------------------------------------------------------------------------------ gathering


def loss_stack(loss: nn.Module) -> list[nn.Module]:
    """The loss and every loss it wraps (``MatryoshkaLoss(loss=...)``), outermost first."""
    out = [loss]
    inner = getattr(loss, "loss", None)
    if isinstance(inner, nn.Module):
        out.extend(loss_stack(inner))
    return out


def widget_examples(dataset: ColumnDataset, n: int = 5, per_example: int = 3) -> list[dict[str, Any]]:
    """Hub widget examples from the first ``n`` rows: each row's first column against ``per_example`` sentences.

    The sentences are the row's other columns (its positive, negatives, ...), topped up with texts of the
    following rows so that every example compares against a few unrelated sentences too.
    """
    columns = dataset.column_names
    rows = dataset.rows(n + per_example)
    examples = []
    for i, row in enumerate(rows[:n]):
        source = str(row[columns[0]])
        others = [row[c] for c in columns[1:]] + [r[c] for r in rows[i + 1 :] + rows[:i] for c in columns]
        sentences: list[str] = []
        for text in others:
            if text != source and text not in sentences and len(sentences) < per_example:
                sentences.append(str(text))
        if sentences:
            examples.append({"source_sentence": source, "sentences": sentences})
    return examples


def _summary(kind: str, values: np.ndarray) -> dict[str, Any]:
    if values.size == 0:
        return {"type": kind, "min": 0, "mean": 0.0, "max": 0}
    cast = int if kind == "string" else float
    return {"type": kind, "min": cast(values.min()), "mean": float(values.mean()), "max": cast(values.max())}


def column_stats(model: SentenceEncoder, dataset: ColumnDataset, limit: int = STATS_ROWS) -> dict[str, dict]:
    """``{column: {"type", "min", "mean", "max"}}`` over the first ``limit`` rows, the label column last.

    Text columns count tokens as the model sees them (special tokens added, truncated to ``max_seq_length``); the
    label column is named as in ``ColumnDataset.rows``.
    """
    n = min(limit, len(dataset))
    stats = {
        name: _summary("string", np.array([len(ids) for ids in model.tokenizer(dataset.column(name)[:n])]))
        for name in dataset.column_names
    }
    if dataset.labels is not None:
        key = "label" if "label" not in dataset.column_names else "__label__"
        stats[key] = _summary("float", np.asarray(dataset.labels[:n], dtype=np.float64))
    return stats


def evaluator_metrics(evaluator: Any, metrics: dict[str, float]) -> dict[str, float]:
    """The entries of ``metrics`` that ``evaluator`` produced, keyed without its ``"{name}_"`` prefix.

    The keys are the evaluator's own ``metric_keys``; an evaluator without them (or that cannot list them yet, as
    an information-retrieval evaluator whose score functions come from the model) gets everything under its prefix.
    """
    name = getattr(evaluator, "name", "") or ""
    prefix = f"{name}_" if name else ""
    try:
        keys = list(getattr(evaluator, "metric_keys", None) or [])
    except RuntimeError:  # InformationRetrievalEvaluator before its first call, score functions not given
        keys = []
    if not keys:
        keys = [k for k in metrics if k.startswith(prefix) and not k.endswith("validation_loss")]
    return {key.removeprefix(prefix): float(metrics[key]) for key in keys if key in metrics}


def final_metrics(log_history: Sequence[dict], metrics: dict[str, float]) -> dict[str, float]:
    """Latest logged value of every evaluation key, overridden by the final ``metrics``."""
    out: dict[str, float] = {}
    for record in log_history:
        if "loss" not in record:
            out.update({k: v for k, v in record.items() if k not in ("step", "epoch")})
    out.update(metrics)
    return out


def log_rows(
    log_history: Sequence[dict], evaluators: Sequence[Any], max_rows: int = MAX_LOG_ROWS
) -> tuple[list[str], list[list[str]], str | None]:
    """Headers, rows and the bolded metric of the "Training Logs" table (training and eval records merged by step).

    The row with the best value of the first evaluator's primary metric is bold when it was evaluated twice or more.
    Past ``max_rows`` rows, only the evaluated rows are kept (or evenly spaced rows if those are too many), plus
    the last one.
    """
    by_step: dict[int, dict[str, Any]] = {}
    for record in log_history:
        if "step" in record:
            by_step.setdefault(int(record["step"]), {}).update(record)
    records = sorted(by_step.items())
    loss_keys = sorted({k for _, r in records for k in r if k.endswith("validation_loss")})
    primaries = [e.primary_metric for e in evaluators if getattr(e, "primary_metric", None)]
    primaries = [k for k in dict.fromkeys(primaries) if any(k in r for _, r in records)]
    headers = ["Epoch", "Step", "Training Loss"]
    headers += [
        "Validation Loss" if k == "validation_loss" else f"{k.removesuffix('_validation_loss')} Loss" for k in loss_keys
    ]
    headers += primaries

    def cell(record: dict, key: str, fixed: bool) -> str:
        if key not in record:
            return "-"
        return f"{float(record[key]):.4f}" if fixed else str(round(float(record[key]), 4))

    scored = [(float(r[primaries[0]]), i) for i, (_, r) in enumerate(records) if primaries and primaries[0] in r]
    scored = [item for item in scored if np.isfinite(item[0])]
    best = max(scored)[1] if len(scored) > 1 else None
    keep = range(len(records))
    if len(records) > max_rows:
        evaluated = [i for i, (_, r) in enumerate(records) if any(k in r for k in loss_keys + primaries)]
        spaced = np.linspace(0, len(records) - 1, max_rows).round().astype(int).tolist()
        keep = sorted({*(evaluated if 0 < len(evaluated) < max_rows else spaced), len(records) - 1, best or 0})
    rows = []
    for i in keep:
        step, record = records[i]
        epoch = str(round(float(record["epoch"]), 4)) if "epoch" in record else "-"
        row = [epoch, str(step), cell(record, "loss", False)]
        row += [cell(record, k, False) for k in loss_keys] + [cell(record, k, True) for k in primaries]
        rows.append([f"**{c}**" for c in row] if i == best else row)
    return headers, rows, primaries[0] if best is not None else None


def eval_results(evaluators: Sequence[Any], metrics: dict[str, float]) -> list[dict[str, Any]]:
    """Per evaluator with results: its task and dataset for the model-index, all its metrics and the primary one."""
    results = []
    for evaluator in evaluators:
        values = evaluator_metrics(evaluator, metrics)
        if not values:
            continue
        kind = type(evaluator).__name__
        task = EVALUATOR_TASKS.get(kind, (kind.removesuffix("Evaluator").lower(), tpl.metric_title(kind)))
        name = getattr(evaluator, "name", "") or ""
        primary = str(getattr(evaluator, "primary_metric", ""))
        results.append(
            {
                "evaluator": kind,
                "task_type": task[0],
                "task_name": task[1],
                "dataset_type": name or "unknown",
                "dataset_name": re.sub(r"[-_]+", " ", name or "unknown"),
                "all": values,
                "primary": primary.removeprefix(f"{name}_") if name else primary,
                "metrics": [
                    {"type": k, "value": v, "name": tpl.metric_title(k)} for k, v in values.items() if np.isfinite(v)
                ],
            }
        )
    return results


def loss_link(loss: nn.Module) -> str:
    """The loss's class name, linked to sentence-transformers' documentation of its counterpart for kosim losses."""
    name = type(loss).__name__
    return (
        f"[<code>{name}</code>]({LOSS_DOCS}{name.lower()})"
        if type(loss).__module__.startswith("kosim.")
        else f"<code>{name}</code>"
    )


def example_similarities(model: SentenceEncoder, sentences: list[str]) -> tuple[np.ndarray, str]:
    """The usage example's embeddings ``[n, dim]`` and the printed ``[n, n]`` similarity matrix."""
    embeddings = model.encode(sentences)
    with torch.no_grad():
        return embeddings, str(model.similarity(embeddings, embeddings))


def dataset_sections(
    model: SentenceEncoder, train_datasets: dict[str, ColumnDataset], losses: dict[str, nn.Module]
) -> str:
    """One section per training dataset: size, column statistics, samples, and its loss with its parameters."""
    sections = []
    for name, data in train_datasets.items():
        loss = losses[name]
        config = loss.config() if hasattr(loss, "config") else {}
        sampled = min(STATS_ROWS, len(data))
        stats = column_stats(model, data, sampled)
        sections.append(tpl.dataset(name, len(data), sampled, stats, data.rows(3), loss_link(loss), config))
    return "\n\n".join(sections)


def training_sections(
    args: TrainingArguments, log_history: Sequence[dict], evaluators: Sequence[Any], losses: Sequence[nn.Module]
) -> list[str]:
    """The hyperparameters (and card notes), the training log table, library versions and citations."""
    sections = [
        tpl.hyperparameters(
            {k: v for k, v in args.non_defaults().items() if k not in HIDDEN_ARGS},
            {k: v for k, v in args.to_dict().items() if k not in HIDDEN_ARGS},
            dict(args.card_notes),
        )
    ]
    headers, rows, bold = log_rows(log_history, evaluators)
    if rows:
        sections.append(tpl.training_logs(headers, rows, bold))
    sections.append(tpl.framework_versions(versions()))
    sections.append(
        tpl.citations([(type(loss).__name__, getattr(type(loss), "citation", "") or "") for loss in losses])
    )
    return sections


# ------------------------------------------------------------------------------------------------ the card


def build_model_card(
    model: SentenceEncoder,
    *,
    train_datasets: dict[str, ColumnDataset],
    losses: dict[str, nn.Module],
    args: TrainingArguments,
    log_history: list[dict],
    metrics: dict[str, float],
    evaluators: Sequence[Any] = (),
    base_model: str | None = None,
    language: str | None = "ko",
    widget_rows: int = 5,
) -> str:
    """The Markdown model card (``README.md``) of a trained model; see the module docstring for what it holds.

    Args:
        model: the trained model (architecture, dimensions, tokenizer for the token statistics).
        train_datasets: ``{name: dataset}`` in training order; the first one provides the widget examples.
        losses: ``{dataset name: loss}``.
        args: the run's arguments (``output_dir`` is left out of the lists and used as the model id in examples).
        log_history: the Trainer's training-loss and evaluation records.
        metrics: the final evaluation metrics (evaluator keys, validation losses).
        evaluators: the evaluators behind ``metrics``, for the model-index and the evaluation tables.
        base_model: Hub id (linked and put in the metadata) or local path of the starting checkpoint.
        language: language code for the metadata, ``None`` to leave it out.
        widget_rows: number of Hub widget examples taken from the first dataset.
    """
    hub_base = base_model if base_model and HUB_ID.fullmatch(base_model) and not Path(base_model).exists() else None
    shown_base = hub_base or (Path(base_model).name if base_model else None)  # no local paths in the title
    title = f"SentenceTransformer based on {shown_base}" if shown_base else "SentenceTransformer"
    all_losses = [inner for loss in losses.values() for inner in loss_stack(loss)]
    tags = ["sentence-transformers", "sentence-similarity", "feature-extraction", "generated_from_trainer", "kosim"]
    tags.append(f"dataset_size:{sum(len(d) for d in train_datasets.values())}")
    tags += [f"loss:{name}" for name in dict.fromkeys(type(loss).__name__ for loss in all_losses)]
    results = eval_results(evaluators, final_metrics(log_history, metrics))

    first = next(iter(train_datasets.values()))
    widget = widget_examples(first, widget_rows)
    example = (
        [widget[0]["source_sentence"], *widget[0]["sentences"][:2]]
        if widget
        else first.column(first.column_names[0])[:3]
    )
    embeddings, similarities = example_similarities(model, list(example))
    details = {
        "Maximum Sequence Length": f"{model.max_seq_length} tokens",
        "Output Dimensionality": f"{model.embedding_dim} dimensions",
        "Similarity Function": tpl.SIMILARITY_NAMES[model.similarity_fn_name],
        "Training Dataset" + ("s" if len(train_datasets) > 1 else ""): ", ".join(train_datasets),
    }
    if language:
        details["Language"] = language
    if any(model.prompts.values()):  # what encode_query / encode_document / prompt_name= put before the texts
        details["Prompts"] = ", ".join(f"`{name}`: `{prompt!r}`" for name, prompt in model.prompts.items() if prompt)

    plural = "s" if len(train_datasets) > 1 else ""
    sections = [
        tpl.front_matter(tags, hub_base, language, widget, title, results),
        tpl.model_details(
            title,
            base_model,
            f"https://huggingface.co/{hub_base}" if hub_base else None,
            details,
            architecture(model),
            model.embedding_dim,
        ),
        tpl.usage(args.output_dir, list(example), embeddings.shape, similarities, details["Similarity Function"]),
    ]
    if results:
        sections.append(tpl.evaluation(results))
    sections.append(
        f"## Training Details\n\n### Training Dataset{plural}\n\n" + dataset_sections(model, train_datasets, losses)
    )
    sections += training_sections(args, log_history, evaluators, all_losses)
    return "\n\n".join(sections) + "\n"
