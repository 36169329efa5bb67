"""Training prompts (``TrainingArguments.prompts``): their three forms, checked and resolved per dataset and column.

A prompt is text put before every text of a column when the dataset is tokenized (once, before training):

    "query: "                                        every column of every dataset
    {"anchor": "query: ", "positive": "passage: "}   by column name (a key naming a dataset: all its columns)
    {"nli": {"anchor": "query: "}}                    by dataset, then column

``check_prompts`` checks the shape (no dataset known yet: `TrainingArguments` calls it); ``resolve_prompts``
checks the names against the datasets and gives ``{dataset: {column: prompt}}``; ``model_prompts`` gives what the
trained model saves in ``config_sentence_transformers.json``, so its ``encode_query`` / ``encode_document`` use them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kosim.utils.suggest import did_you_mean

__all__ = ["check_prompts", "model_prompts", "resolve_prompts", "run_prompts"]

Prompts = str | Mapping[str, str] | Mapping[str, Mapping[str, str]] | None


def check_prompts(prompts: Any) -> str | None:
    """Why ``prompts`` has none of the accepted shapes (None when it has one)."""
    if prompts is None or isinstance(prompts, str):
        return None
    if not isinstance(prompts, Mapping):
        return "expected a str, a {column: prompt} table or a {dataset: {column: prompt}} table"
    for key, value in prompts.items():
        if not isinstance(key, str):
            return f"key {key!r} is not a str"
        if isinstance(value, Mapping):
            for column, prompt in value.items():
                if not isinstance(column, str) or not isinstance(prompt, str):
                    return f"{key}.{column}: expected a str prompt, got {type(prompt).__name__}"
        elif not isinstance(value, str):
            return f"{key}: expected a str prompt or a {{column: prompt}} table, got {type(value).__name__}"
    return None


def resolve_prompts(
    prompts: Prompts, columns: Mapping[str, Sequence[str]], where: str = "TrainingArguments.prompts"
) -> dict[str, dict[str, str]]:
    """``{dataset: {column: prompt}}`` (only non-empty prompts) for datasets given as ``{name: column names}``.

    A name that is neither a dataset nor a column of one (or that is both) is a ValueError naming it.
    """
    why = check_prompts(prompts)
    if why is not None:
        raise ValueError(f"{where}: {why}")
    out: dict[str, dict[str, str]] = {name: {} for name in columns}
    if prompts is None:
        return {}
    if isinstance(prompts, str):
        return {name: dict.fromkeys(cols, prompts) for name, cols in columns.items()} if prompts else {}
    all_columns = list(dict.fromkeys(c for cols in columns.values() for c in cols))
    for key, value in prompts.items():
        if isinstance(value, Mapping):
            if key not in columns:
                raise ValueError(
                    f"{where}: {key!r} is not a dataset of this run; datasets are {list(columns)}"
                    f"{did_you_mean(key, list(columns))}"
                )
            for column, prompt in value.items():
                if column not in columns[key]:
                    raise ValueError(
                        f"{where}: {key}.{column}: dataset {key!r} has no column {column!r}; its columns are "
                        f"{list(columns[key])}{did_you_mean(column, list(columns[key]))}"
                    )
                out[key][column] = prompt
        elif key in columns:
            if key in all_columns:
                raise ValueError(
                    f"{where}: {key!r} names both a dataset and a column; use {{{key!r}: {{column: prompt}}}}"
                )
            out[key].update(dict.fromkeys(columns[key], value))
        elif key in all_columns:
            for name, cols in columns.items():
                if key in cols:
                    out[name][key] = value
        else:
            raise ValueError(
                f"{where}: {key!r} is neither a dataset nor a column of one (datasets {list(columns)}, "
                f"columns {all_columns}){did_you_mean(key, list(columns) + all_columns)}"
            )
    return {name: {c: p for c, p in cols.items() if p} for name, cols in out.items() if any(cols.values())}


def model_prompts(resolved: Mapping[str, Mapping[str, str]], columns: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The prompts a model trained with ``resolved`` saves: ``{prompt name: prompt}``.

    Each column name with one prompt in every dataset that prompts it becomes a prompt name. Then, unless a column
    is named so: "query" is the first column's prompt and "document" that of the later columns, where every
    dataset with prompts agrees (the retrieval layout: anchor/query first, positives and negatives after).
    """
    out: dict[str, str] = {}
    conflicting: set[str] = set()
    for cols in resolved.values():
        for column, prompt in cols.items():
            if out.setdefault(column, prompt) != prompt:
                conflicting.add(column)
    out = {c: p for c, p in out.items() if c not in conflicting}
    firsts, rests = set(), set()
    for name, cols in resolved.items():
        names = list(columns[name])
        firsts.add(cols.get(names[0], ""))
        rests.update(cols.get(c, "") for c in names[1:])
    if len(firsts) == 1 and "" not in firsts:
        out.setdefault("query", firsts.pop())
    if len(rests) == 1 and "" not in rests:
        out.setdefault("document", rests.pop())
    return out


def run_prompts(
    prompts: Prompts, train: Mapping[str, Sequence[str]], evaluation: Mapping[str, Sequence[str]] | None = None
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """A training run's prompts: ``({dataset: {column: prompt}}, the model's prompts)``, given the column names
    of the train and eval datasets (an eval dataset named as a train dataset shares its prompts)."""
    columns = {name: list(cols) for name, cols in (evaluation or {}).items()}
    for name, cols in train.items():
        columns[name] = list(dict.fromkeys([*cols, *columns.get(name, [])]))
    resolved = resolve_prompts(prompts, columns)
    trained = {name: resolved[name] for name in train if name in resolved}
    return resolved, model_prompts(trained, train)
