"""Deterministic, resumable batch samplers (plain, no-duplicates, multi-dataset).

The no-duplicates sampler lives in :mod:`kosim.data.no_duplicates` and the machinery every sampler shares in
:mod:`kosim.data.sampler_base`; all three samplers are importable from here.

Randomness: every sampler draws from a fresh ``torch.Generator`` seeded with ``seed + epoch`` and shuffles with
``torch.randperm``, so an epoch's batches are a pure function of ``(seed, epoch, dataset, settings)``.  These are
the draws sentence-transformers (ST) 6.2 makes: with equal seeds :class:`NoDuplicatesBatchSampler` yields exactly
ST's batches, and so do both multi-dataset strategies over no-duplicates children (ST re-seeds its shared generator
with ``seed + epoch`` in those samplers; refill passes aside, whose draws ST interleaves on that shared generator).
ST's default sampler does not re-seed itself, but under ST's trainer accelerate re-seeds it with ``seed + epoch``
each epoch, so :class:`BatchSampler` matches it there on one dataset; children of a multi-dataset sampler over
default samplers share one generator in ST and are seeded per dataset here, so those orders differ.

Resuming: each sampler plans a whole epoch up front, counts the batches it has handed out in the current epoch,
and reports ``{"epoch", "batches_yielded", ...}`` from :meth:`state_dict`.  After :meth:`load_state_dict` the next
iteration re-plans that epoch and skips the batches already used, so the remaining batches are identical to those
of an uninterrupted run.  A prefetching ``DataLoader`` pulls batches ahead of the training loop, so a trainer should
save ``state_dict(batches_consumed=steps_done_in_epoch)`` rather than the sampler's own count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from kosim.data.datasets import ColumnDataset
from kosim.data.no_duplicates import NoDuplicatesBatchSampler
from kosim.data.sampler_base import EpochPlanSampler, FixedBatchSampler, epoch_generator, randperm
from kosim.data.tokenized import TokenizedDataset

__all__ = ["BatchSampler", "NoDuplicatesBatchSampler", "MultiDatasetBatchSampler"]


class BatchSampler(FixedBatchSampler):
    """Shuffle all rows once per epoch and cut the permutation into consecutive batches.

    This is ST's default ``"batch_sampler"`` (a ``RandomSampler`` feeding a ``torch`` ``BatchSampler``); given a
    generator seeded ``seed + epoch`` the two produce the same batches.

    Args:
        dataset: the dataset (anything with ``len``) or the number of rows.
        batch_size: rows per batch.
        drop_last: drop the final incomplete batch.
        seed: base seed; epoch ``e`` uses ``seed + e``.
        shuffle: ``False`` keeps the natural row order (e.g. for evaluation).
    """

    def __init__(
        self,
        dataset: Sequence[Any] | ColumnDataset | TokenizedDataset | int,
        batch_size: int,
        drop_last: bool = False,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        super().__init__(int(dataset) if isinstance(dataset, int) else len(dataset), batch_size, drop_last, seed)
        self.shuffle = bool(shuffle)

    def _plan(self, epoch: int) -> list[np.ndarray]:
        n, bs = self.num_rows, self.batch_size
        order = randperm(n, epoch_generator(self.seed, epoch)) if self.shuffle else np.arange(n)
        stop = (n // bs) * bs if self.drop_last else n
        return [order[i : i + bs] for i in range(0, stop, bs)]


# --------------------------------------------------------------------------------------------------------------------


class MultiDatasetBatchSampler(EpochPlanSampler[tuple[int, list[int]]]):
    """Interleave batches of several per-dataset samplers; yields ``(dataset_index, row_indices)``.

    Strategies (ST 6.2's ``RoundRobinBatchSampler`` / ``ProportionalBatchSampler``):

    * ``"round_robin"``: one batch from each dataset in order, round after round, stopping as soon as any dataset
      runs out; only complete rounds are yielded (``rounds = min(batches per dataset)``), so larger datasets are
      not fully used.  ``len() = min(len(s)) * num_datasets``.
    * ``"proportional"``: a list holding dataset ``i`` ``len(sampler_i)`` times is shuffled (``torch.randperm``,
      generator seeded ``seed + epoch``) and each entry takes that dataset's next batch; every advertised batch of
      every dataset is used once.  A child producing fewer batches than its ``len()`` leaves its extra slots
      unused; batches beyond its ``len()`` are never used.  ``len() = sum(len(s))``.

    Children keep their own seeds and are planned for this sampler's epoch; :meth:`set_epoch` propagates and
    :meth:`state_dict` includes the children's states.
    """

    STRATEGIES = ("round_robin", "proportional")

    def __init__(self, samplers: Sequence[EpochPlanSampler[Any]], strategy: str = "round_robin", seed: int = 0) -> None:
        super().__init__(seed)
        if not samplers:
            raise ValueError("MultiDatasetBatchSampler needs at least one sampler")
        if strategy not in self.STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; valid strategies: {list(self.STRATEGIES)}")
        self.samplers = list(samplers)
        self.strategy = strategy

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        for s in self.samplers:
            s.set_epoch(epoch)

    def _state_extra(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "num_datasets": len(self.samplers)}

    def state_dict(self, batches_consumed: int | None = None) -> dict[str, Any]:
        state = super().state_dict(batches_consumed)
        state["children"] = [s.state_dict() for s in self.samplers]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        children = state.get("children")
        if children is not None:
            if len(children) != len(self.samplers):
                raise ValueError(f"cannot resume: saved {len(children)} child samplers, have {len(self.samplers)}")
            for s, child_state in zip(self.samplers, children):
                s.load_state_dict(child_state)

    def _plan(self, epoch: int) -> list[tuple[int, np.ndarray]]:
        plans = [s.plan(epoch) for s in self.samplers]
        if self.strategy == "round_robin":
            rounds = min(len(p) for p in plans)
            return [(i, plans[i][r]) for r in range(rounds) for i in range(len(plans))]
        lengths = [len(s) for s in self.samplers]
        slots = np.repeat(np.arange(len(plans)), lengths)
        order = slots[torch.randperm(slots.size, generator=epoch_generator(self.seed, epoch)).numpy()]
        nexts = [0] * len(plans)
        out: list[tuple[int, np.ndarray]] = []
        for i in order.tolist():
            if nexts[i] < len(plans[i]):
                out.append((i, plans[i][nexts[i]]))
                nexts[i] += 1
        return out

    def _to_output(self, item: tuple[int, Any]) -> tuple[int, list[int]]:
        i, batch = item
        return i, (batch.tolist() if isinstance(batch, np.ndarray) else list(batch))

    def __len__(self) -> int:
        lengths = [len(s) for s in self.samplers]
        if self.strategy == "round_robin":
            return min(lengths) * len(lengths)
        return sum(lengths)
