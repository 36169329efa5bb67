"""kosim.data: column datasets and readers, tokenized storage, samplers, and collation into packed batches.

Modules, in the order a batch meets them: ``parsing`` (TSV/CSV/JSONL records, column choice, ``path:line``
errors) -> ``datasets`` (:class:`ColumnDataset`) and ``readers`` (:func:`read_table`, KorSTS, KorNLI, sentences)
-> ``tokenized`` (tokenize once, flat ids) -> ``samplers`` / ``no_duplicates`` (epoch plans over row indices, on
``sampler_base``) -> ``collate`` (rows -> one packed batch). Retrieval data: ``beir`` (corpus/queries/qrels files) and
``retrieval_task`` (queries, corpus and relevance judgements; the bundled KorNLI task).
"""

from __future__ import annotations

from kosim.data.beir import beir_training_pairs, load_beir, read_beir_corpus, read_beir_qrels, read_beir_queries
from kosim.data.collate import TrainBatch, collate, split_rows
from kosim.data.datasets import ColumnDataset, DataError, TokenizedColumn, TokenizedDataset
from kosim.data.group_by_label import GroupByLabelBatchSampler
from kosim.data.readers import (
    TABLE_FORMATS,
    TABLE_SUFFIXES,
    read_kornli_pairs,
    read_kornli_triplets,
    read_korsts,
    read_sentences,
    read_table,
)
from kosim.data.resources import kornli_path, korsts_path
from kosim.data.retrieval_task import RetrievalTask, kornli_retrieval_task
from kosim.data.samplers import BatchSampler, MultiDatasetBatchSampler, NoDuplicatesBatchSampler

__all__ = [
    "TABLE_FORMATS",
    "TABLE_SUFFIXES",
    "BatchSampler",
    "ColumnDataset",
    "DataError",
    "GroupByLabelBatchSampler",
    "MultiDatasetBatchSampler",
    "NoDuplicatesBatchSampler",
    "TokenizedColumn",
    "TokenizedDataset",
    "TrainBatch",
    "collate",
    "kornli_path",
    "korsts_path",
    "RetrievalTask",
    "beir_training_pairs",
    "kornli_retrieval_task",
    "load_beir",
    "read_beir_corpus",
    "read_beir_qrels",
    "read_beir_queries",
    "read_kornli_pairs",
    "read_kornli_triplets",
    "read_korsts",
    "read_sentences",
    "read_table",
    "split_rows",
]
