"""kosim.data: column datasets and readers, tokenized storage, samplers, and collation into packed batches.

Modules, in the order a batch meets them: ``parsing`` (TSV/CSV/JSONL records, column choice, ``path:line``
errors) -> ``datasets`` (:class:`ColumnDataset`) and ``readers`` (:func:`read_table`, KorSTS, KorNLI, sentences)
-> ``tokenized`` (tokenize once, flat ids) -> ``samplers`` / ``no_duplicates`` (epoch plans over row indices, on
``sampler_base``) -> ``collate`` (rows -> one packed batch).

The samplers and collation need torch; they are imported on first use, so reading data (and
``kosim.data.resources``) stays torch-free.
"""

from __future__ import annotations

import importlib
from typing import Any

from kosim.data.datasets import ColumnDataset, DataError, TokenizedColumn, TokenizedDataset
from kosim.data.readers import (
    TABLE_FORMATS,
    TABLE_SUFFIXES,
    read_kornli_triplets,
    read_korsts,
    read_sentences,
    read_table,
)
from kosim.data.resources import kornli_path, korsts_path

__all__ = [
    "TABLE_FORMATS",
    "TABLE_SUFFIXES",
    "BatchSampler",
    "ColumnDataset",
    "DataError",
    "MultiDatasetBatchSampler",
    "NoDuplicatesBatchSampler",
    "TokenizedColumn",
    "TokenizedDataset",
    "TrainBatch",
    "collate",
    "kornli_path",
    "korsts_path",
    "read_kornli_triplets",
    "read_korsts",
    "read_sentences",
    "read_table",
    "split_rows",
]

# name -> module holding it, for the torch-dependent names loaded on first access.
_LAZY = {
    "TrainBatch": "kosim.data.collate",
    "collate": "kosim.data.collate",
    "split_rows": "kosim.data.collate",
    "BatchSampler": "kosim.data.samplers",
    "MultiDatasetBatchSampler": "kosim.data.samplers",
    "NoDuplicatesBatchSampler": "kosim.data.samplers",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
