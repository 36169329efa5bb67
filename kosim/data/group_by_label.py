"""The group-by-label batch sampler: batches of pairs of same-label rows, for in-batch triplet mining.

The batch triplet losses (:mod:`kosim.losses.batch_hard`) need every batch to hold several labels with at least
two rows each; a shuffled batch of a many-class dataset rarely does. Semantics and random draws are
sentence-transformers 6.2's ``GroupByLabelBatchSampler``: with equal seeds both yield the same batches.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch

from kosim.data.datasets import ColumnDataset
from kosim.data.sampler_base import FixedBatchSampler, epoch_generator
from kosim.data.tokenized import TokenizedDataset

__all__ = ["GroupByLabelBatchSampler", "label_groups"]


def label_groups(labels: np.ndarray) -> list[np.ndarray]:
    """Row indices per label, labels in order of first appearance, keeping only labels with at least 2 rows."""
    labels = np.asarray(labels)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # unique labels by first appearance
    rows = np.argsort(inverse.reshape(-1), kind="stable")  # rows grouped by label, in row order inside a group
    counts = np.bincount(inverse.reshape(-1), minlength=first.size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    groups = [rows[starts[u] : starts[u] + counts[u]] for u in order]
    return [g for g in groups if g.size >= 2]


class GroupByLabelBatchSampler(FixedBatchSampler):
    """Batches of ``batch_size`` rows in which every label present has at least two rows.

    Per epoch (a fresh ``torch.Generator`` seeded ``seed + epoch``): each label's rows are shuffled
    (``torch.randperm``) and cut to an even count; then, round after round, the labels still holding rows are put in
    a random order (the first swapped with the second if it would repeat the label that ended the previous round
    while a batch is being filled) and each gives its next two rows to a stream that is cut into batches. The
    stream stops once fewer than two labels have rows left, so the tail of a dominant label goes unused. A final
    partial batch is kept when ``drop_last`` is False and it has at least 4 rows (two labels). Labels with a single
    row never appear.

    ``len()`` is exact: ``stream // batch_size`` (plus one for a kept partial batch), where ``stream`` is twice the
    sum over labels of ``min(pairs, second-largest pairs)``.

    Args:
        dataset: a :class:`ColumnDataset` or :class:`TokenizedDataset` with labels (class ids; any values that
            compare equal for the same class).
        batch_size: rows per batch, an even number >= 4.
        drop_last: drop the final partial batch.
        seed: base seed; epoch ``e`` uses ``seed + e``.

    Raises:
        ValueError: a dataset without labels, an odd or too small ``batch_size``, or fewer than two labels with
            two rows or more.
    """

    def __init__(
        self,
        dataset: ColumnDataset | TokenizedDataset,
        batch_size: int,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 4 or batch_size % 2:
            raise ValueError(f"GroupByLabelBatchSampler: batch_size must be an even number >= 4, got {batch_size!r}")
        labels = getattr(dataset, "labels", None)
        if labels is None:
            name = getattr(dataset, "name", type(dataset).__name__)
            raise ValueError(
                f"GroupByLabelBatchSampler needs a dataset with labels (one class id per row); {name!r} has none"
            )
        self.groups = label_groups(np.asarray(labels))
        if len(self.groups) < 2:
            raise ValueError(
                "GroupByLabelBatchSampler needs at least 2 distinct labels with 2 or more rows each, but only "
                f"{len(self.groups)} label(s) have that"
            )
        pairs = sorted((g.size // 2 for g in self.groups), reverse=True)
        self.stream_length = 2 * sum(min(p, pairs[1]) for p in pairs)
        super().__init__(len(dataset), batch_size, drop_last, seed)

    def _state_extra(self) -> dict[str, Any]:
        return {**super()._state_extra(), "stream_length": self.stream_length}

    def __len__(self) -> int:
        n = self.stream_length // self.batch_size
        if not self.drop_last and self.stream_length % self.batch_size >= 4:
            n += 1
        return n

    def _plan(self, epoch: int) -> list[np.ndarray]:
        g = epoch_generator(self.seed, epoch)
        queues = []
        for rows in self.groups:
            perm = torch.randperm(rows.size, generator=g).numpy()[: rows.size // 2 * 2]
            queues.append(deque(rows[perm].tolist()))
        remaining = list(range(len(queues)))
        batches: list[np.ndarray] = []
        batch: list[int] = []
        last = None
        while len(remaining) >= 2:
            remaining = [remaining[i] for i in torch.randperm(len(remaining), generator=g).tolist()]
            if batch and remaining[0] == last:  # two consecutive pairs of one label would share the batch
                remaining[0], remaining[1] = remaining[1], remaining[0]
            for label in remaining:
                batch += [queues[label].popleft(), queues[label].popleft()]
                if len(batch) >= self.batch_size:
                    batches.append(np.asarray(batch[: self.batch_size], dtype=np.int64))
                    batch = batch[self.batch_size :]
            last = remaining[-1]
            remaining = [label for label in remaining if queues[label]]
        if not self.drop_last and len(batch) >= 4:
            batches.append(np.asarray(batch, dtype=np.int64))
        return batches
