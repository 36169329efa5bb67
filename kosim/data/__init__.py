"""kosim.data: column datasets and readers, tokenized storage, samplers, and collation into packed batches."""

from __future__ import annotations

from kosim.data.collate import TrainBatch, collate, split_rows
from kosim.data.datasets import ColumnDataset, DataError, TokenizedColumn, TokenizedDataset
from kosim.data.readers import read_kornli_triplets, read_korsts, read_sentences
from kosim.data.resources import kornli_path, korsts_path
from kosim.data.samplers import BatchSampler, MultiDatasetBatchSampler, NoDuplicatesBatchSampler

__all__ = [
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
    "split_rows",
]
