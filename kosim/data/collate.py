"""Collation: rows of a tokenized dataset -> one PackedBatch holding every column, plus labels and text ids.

Everything is vectorised numpy over the selected rows: no per-sample Python work in the training step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kosim.data.tokenized import TokenizedColumn, TokenizedDataset
from kosim.nn.packing import PackedBatch, pack_flat
from kosim.utils import ragged


@dataclass
class TrainBatch:
    """One training batch: all columns packed together, column-major (`column c` = sequences `[c*n, (c+1)*n)`)."""

    packed: PackedBatch
    num_columns: int
    num_rows: int
    labels: Tensor | None  # [rows] or [rows, k] float32 (vector labels: teacher scores or embeddings)
    text_ids: list[Tensor]  # per column [rows] int64 (equal id = equal text)
    dataset_index: int = 0

    def to(self, device: torch.device | str) -> TrainBatch:
        return TrainBatch(
            packed=self.packed.to(device),
            num_columns=self.num_columns,
            num_rows=self.num_rows,
            labels=None if self.labels is None else self.labels.to(device, non_blocking=True),
            text_ids=[t.to(device, non_blocking=True) for t in self.text_ids],
            dataset_index=self.dataset_index,
        )

    @property
    def padding_fraction(self) -> float:
        """Share of a padded `[seqs, max_len]` layout that would be padding (host-side, no sync)."""
        p = self.packed
        return 1.0 - p.num_tokens / max(1, p.num_seqs * p.max_len)


def gather_rows(column: TokenizedColumn, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat token ids and lengths of `rows` of one column (vectorised)."""
    ids, offsets = ragged.gather(column.ids, column.offsets, rows)
    return ids, np.diff(offsets)


def collate(dataset: TokenizedDataset, rows: np.ndarray | list[int], dataset_index: int = 0) -> TrainBatch:
    """Pack `rows` of every column of `dataset` into one TrainBatch."""
    rows = np.asarray(rows, dtype=np.int64)
    parts = [gather_rows(col, rows) for col in dataset.columns]
    ids = np.concatenate([p[0] for p in parts])
    lengths = np.concatenate([p[1] for p in parts])
    labels = None if dataset.labels is None else torch.from_numpy(dataset.labels[rows])
    text_ids = [torch.from_numpy(np.ascontiguousarray(col.text_ids[rows])) for col in dataset.columns]
    prompts = np.repeat(dataset.prompt_lengths, len(rows)) if any(dataset.prompt_lengths) else None  # [seqs]
    packed = pack_flat(ids, lengths, prompts)
    return TrainBatch(packed, dataset.num_columns, len(rows), labels, text_ids, dataset_index)


def split_rows(batch_rows: np.ndarray | list[int], rank: int, world_size: int) -> np.ndarray:
    """The contiguous share of a global batch that process `rank` trains on."""
    rows = np.asarray(batch_rows, dtype=np.int64)
    bounds = np.linspace(0, len(rows), world_size + 1).round().astype(np.int64)
    return rows[bounds[rank] : bounds[rank + 1]]
