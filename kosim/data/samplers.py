"""Deterministic, resumable batch samplers (plain, no-duplicates, multi-dataset).

Randomness: every sampler draws from a fresh ``torch.Generator`` seeded with ``seed + epoch`` and shuffles with
``torch.randperm``, so an epoch's batches are a pure function of ``(seed, epoch, dataset, settings)``.  These are
the draws sentence-transformers (ST) 6.2 makes: with equal seeds :class:`NoDuplicatesBatchSampler` yields exactly
ST's batches, and so do both multi-dataset strategies over no-duplicates children (ST re-seeds its shared generator
with ``seed + epoch`` in those samplers; refill passes aside, whose draws ST interleaves on that shared generator).
ST's default sampler never re-seeds, so :class:`BatchSampler` matches it only for a generator seeded
``seed + epoch`` before the epoch.

Resuming: each sampler plans a whole epoch up front, counts the batches it has handed out in the current epoch,
and reports ``{"epoch", "batches_yielded", ...}`` from :meth:`state_dict`.  After :meth:`load_state_dict` the next
iteration re-plans that epoch and skips the batches already used, so the remaining batches are identical to those
of an uninterrupted run.  A prefetching ``DataLoader`` pulls batches ahead of the training loop, so a trainer should
save ``state_dict(batches_consumed=steps_done_in_epoch)`` rather than the sampler's own count.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from kosim.data.datasets import ColumnDataset, TokenizedDataset, _suggest

__all__ = ["BatchSampler", "NoDuplicatesBatchSampler", "MultiDatasetBatchSampler"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Extra reshuffled passes NoDuplicatesBatchSampler may make to reach its advertised length (as ST does).
_MAX_REFILL_PASSES = 2


def _generator(seed: int, epoch: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(int(seed) + int(epoch))
    return g


def _randperm(n: int, g: torch.Generator) -> np.ndarray:
    # int32 when it fits, like ST (the permutation itself does not depend on the dtype).
    dtype = torch.int32 if n <= np.iinfo(np.int32).max else torch.int64
    return torch.randperm(n, generator=g, dtype=dtype).numpy()


class _EpochPlanSampler(abc.ABC, Generic[T]):
    """Shared epoch/seed/resume machinery; subclasses implement ``_plan(epoch) -> list`` of batches."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.epoch = 0
        self._yielded = 0
        self._resume_epoch: int | None = None
        self._resume_skip = 0
        self._cache: tuple[int, list[Any]] | None = None

    # -- subclass API -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def _plan(self, epoch: int) -> list[Any]:
        """The batches of `epoch`, in order (deterministic given seed and epoch)."""

    def _state_extra(self) -> dict[str, Any]:
        """Settings stored with the state and checked on load (a different dataset/batch size cannot resume)."""
        return {}

    def _to_output(self, item: Any) -> T:
        return item

    # -- public ---------------------------------------------------------------------------------------------------
    def plan(self, epoch: int | None = None) -> list[Any]:
        """All batches of ``epoch`` (default: the current one) in order, as stored internally (index arrays); the
        last planned epoch is cached.  Iterating the sampler yields the same batches as ``list[int]``."""
        epoch = self.epoch if epoch is None else int(epoch)
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, self._plan(epoch))
        return self._cache[1]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose plan the next iteration yields (a pending resume for that epoch is kept)."""
        self.epoch = int(epoch)
        if self._resume_epoch != self.epoch:
            self._resume_epoch, self._resume_skip = None, 0
            self._yielded = 0

    def __iter__(self) -> Iterator[T]:
        plan = self.plan(self.epoch)
        start = self._resume_skip if self._resume_epoch == self.epoch else 0
        self._resume_epoch, self._resume_skip = None, 0
        self._yielded = start
        for item in plan[start:]:
            self._yielded += 1
            yield self._to_output(item)

    def state_dict(self, batches_consumed: int | None = None) -> dict[str, Any]:
        """``{"epoch", "batches_yielded", "seed", ...settings}``; pass ``batches_consumed`` to record how many
        batches the training loop actually finished (it may lag the sampler under DataLoader prefetching)."""
        done = self._yielded if batches_consumed is None else int(batches_consumed)
        return {"epoch": self.epoch, "batches_yielded": done, "seed": self.seed, **self._state_extra()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next iteration re-plans ``state["epoch"]`` and skips its first ``batches_yielded`` batches."""
        expected = {"seed": self.seed, **self._state_extra()}
        for key, value in expected.items():
            if key in state and state[key] != value:
                raise ValueError(f"cannot resume: saved {key}={state[key]!r} but this sampler has {key}={value!r}")
        skip = int(state["batches_yielded"])
        if skip < 0:
            raise ValueError(f"batches_yielded must be >= 0, got {skip}")
        self.epoch = int(state["epoch"])
        self._resume_epoch, self._resume_skip = self.epoch, skip
        self._yielded = skip


# --------------------------------------------------------------------------------------------------------------------


class BatchSampler(_EpochPlanSampler[list[int]]):
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
        super().__init__(seed)
        self.num_rows = int(dataset) if isinstance(dataset, int) else len(dataset)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if drop_last and self.num_rows < batch_size:
            raise ValueError(
                f"batch_size={batch_size} with drop_last=True but the dataset has only len={self.num_rows} rows: "
                "no batch could be formed"
            )
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.shuffle = bool(shuffle)

    def _state_extra(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "num_rows": self.num_rows, "drop_last": self.drop_last}

    def _plan(self, epoch: int) -> list[np.ndarray]:
        n, bs = self.num_rows, self.batch_size
        order = _randperm(n, _generator(self.seed, epoch)) if self.shuffle else np.arange(n)
        stop = (n // bs) * bs if self.drop_last else n
        return [order[i : i + bs] for i in range(0, stop, bs)]

    def _to_output(self, item: np.ndarray) -> list[int]:
        return item.tolist()

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_rows // self.batch_size
        return (self.num_rows + self.batch_size - 1) // self.batch_size


# --------------------------------------------------------------------------------------------------------------------


class _NoDuplicatesPlanner:
    """Greedy duplicate-free batching over integer text ids, vectorized per window of candidate rows.

    Semantics (identical to ST's walk): the remaining rows form an ordered list; a batch is built by walking it
    from the front, taking each row none of whose texts is already in the batch and skipping (deferring) the rest,
    until the batch is full or the list ends.  Taken rows leave the list, skipped rows keep their order.

    Instead of one Python step per row, a window of candidates is decided at once: a row conflicting with the
    batch so far is skipped; among the others, a row whose texts all occur first in the window (``first-row``
    computed with ``np.minimum.at``) is taken; a row sharing a text with an earlier *certain* row is skipped; only
    rows whose conflicts involve other uncertain rows (rare) are resolved one by one.
    """

    _SENTINEL = np.iinfo(np.int64).max

    def __init__(self, row_ids: np.ndarray) -> None:
        self.row_ids = row_ids  # (n, C) int64, values in [0, U)
        num_ids = int(row_ids.max()) + 1 if row_ids.size else 0
        self.stamp = np.full(num_ids, -1, dtype=np.int64)  # batch token that holds each text id
        self.owner = np.full(num_ids, self._SENTINEL, dtype=np.int64)  # scratch: first window row of a text id
        self.token = 0

    def _decide(self, window: np.ndarray, need: int, token: int) -> tuple[int, np.ndarray]:
        """Walk ``window`` for a batch still needing ``need`` rows: (rows consumed, taken-mask over them)."""
        ids = self.row_ids[window]  # (w, C)
        w, num_cols = ids.shape
        accepted = ~(self.stamp[ids] == token).any(axis=1)
        cand = np.flatnonzero(accepted)
        if cand.size > 1:
            flat = ids[cand].ravel()
            rowpos = np.repeat(cand, num_cols) if num_cols > 1 else cand
            owner = self.owner
            np.minimum.at(owner, flat, rowpos)
            first = owner[flat]
            owner[flat] = self._SENTINEL
            later = first < rowpos  # this text already occurs in an earlier candidate row of the window
            if later.any():
                uncertain = np.zeros(w, dtype=bool)
                uncertain[rowpos[later]] = True
                # The earliest holder of the text is certain (hence taken): this row must be skipped.
                blocked = np.zeros(w, dtype=bool)
                blocked[rowpos[later & ~uncertain[first]]] = True
                accepted &= ~uncertain
                chain = np.flatnonzero(uncertain & ~blocked)
                if chain.size:
                    taken: set[int] = set()
                    for r, row in zip(chain.tolist(), ids[chain].tolist()):
                        if taken.isdisjoint(row):
                            accepted[r] = True
                            taken.update(row)
        counts = np.cumsum(accepted)
        if counts.size and counts[-1] >= need:
            k = int(np.searchsorted(counts, need)) + 1
            return k, accepted[:k]
        return w, accepted

    def one_pass(self, perm: np.ndarray, batch_size: int, drop_last: bool) -> list[np.ndarray]:
        """Batches from one walk over ``perm`` (rows in shuffled order), ST semantics for partial batches."""
        batches: list[np.ndarray] = []
        n = perm.size
        deferred = perm[:0]
        tail = 0  # remaining rows = deferred ++ perm[tail:]
        while deferred.size or tail < n:
            self.token += 1
            token = self.token
            need = batch_size
            taken_parts: list[np.ndarray] = []
            skipped_parts: list[np.ndarray] = []
            d = 0
            while need > 0:
                in_deferred = d < deferred.size
                if not in_deferred and tail >= n:
                    break
                src, lo = (deferred, d) if in_deferred else (perm, tail)
                width = min(src.size - lo, need + need // 4 + 32)
                window = src[lo : lo + width]
                k, mask = self._decide(window, need, token)
                consumed = window[:k]
                taken = consumed[mask]
                if taken.size:
                    taken_parts.append(taken)
                    self.stamp[self.row_ids[taken]] = token
                    need -= taken.size
                if taken.size < k:
                    skipped_parts.append(consumed[~mask])
                if in_deferred:
                    d += k
                else:
                    tail += k
            skipped_parts.append(deferred[d:])
            deferred = np.concatenate(skipped_parts)
            batch = np.concatenate(taken_parts)
            # A batch that ran out of rows is still consumed; it is only emitted when drop_last is False.
            if need == 0 or not drop_last:
                batches.append(batch)
        return batches


def _text_id_matrix(
    dataset: ColumnDataset | TokenizedDataset, valid_columns: Sequence[str] | None
) -> tuple[np.ndarray, list[str]]:
    names = list(dataset.column_names)
    if valid_columns is None:
        use = names
    else:
        use = list(valid_columns)
        for c in use:
            if c not in names:
                raise ValueError(f"valid_columns: no column {c!r}; columns are {names}{_suggest(c, names)}")
        if not use:
            raise ValueError("valid_columns must name at least one column")
    per_column = dataset.text_ids
    mat = np.stack([np.asarray(per_column[names.index(c)], dtype=np.int64) for c in use], axis=1)
    if mat.size and (mat.min() < 0 or mat.max() >= 4 * mat.size + 16):
        # Arbitrary ids (e.g. hashes): compress to a dense range so the lookup tables stay small.
        mat = np.unique(mat, return_inverse=True)[1].reshape(mat.shape).astype(np.int64)
    return mat, use


class NoDuplicatesBatchSampler(_EpochPlanSampler[list[int]]):
    """Batches in which no text occurs twice, across all (or ``valid_columns``) text columns -- ST semantics.

    Per epoch the rows are shuffled (``torch.randperm``, generator seeded ``seed + epoch``) and walked in that
    order.  A row sharing any text with the batch being built is deferred, keeping its place in line ahead of the
    rows not yet visited, and the next batch starts again from the front of the line.  When the line runs out
    before a batch is full, that partial batch is emitted if ``drop_last`` is False and discarded otherwise; either
    way its rows are used up and building continues from the deferred rows, so a pass may produce several small
    batches at its end.  Labels never take part in the comparison.

    ``len()`` is ST's estimate (``len // batch_size`` with ``drop_last``, else the ceiling).  With ``drop_last`` and
    many duplicates a pass can fall short of it; then, like ST, up to two more reshuffled passes (same generator)
    top the epoch up to ``len()`` batches, so a few rows repeat within that epoch (``refill=False`` turns this off:
    every row is then used at most once per epoch).  If even that is not enough (a batch size larger than the
    number of mutually distinct rows), fewer batches are produced and a warning is logged.

    Text ids are taken once from ``TokenizedDataset.text_ids`` or computed once from a ``ColumnDataset``; planning
    an epoch of 1M rows at batch size 8192 takes a few seconds.

    Args:
        dataset: a :class:`ColumnDataset` or :class:`TokenizedDataset`.
        batch_size: rows per batch.
        drop_last: discard batches that could not be filled.
        seed: base seed; epoch ``e`` uses ``seed + e``.
        valid_columns: names of the text columns compared for duplicates (default: all).
        refill: top a short epoch up to ``len()`` batches with extra passes, as ST does.

    Raises:
        ValueError: ``drop_last`` with fewer rows than ``batch_size``; unknown ``valid_columns``.
    """

    def __init__(
        self,
        dataset: ColumnDataset | TokenizedDataset,
        batch_size: int,
        drop_last: bool = False,
        seed: int = 0,
        valid_columns: Sequence[str] | None = None,
        refill: bool = True,
    ) -> None:
        super().__init__(seed)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.num_rows = len(dataset)
        if drop_last and self.num_rows < batch_size:
            raise ValueError(
                f"batch_size={batch_size} with drop_last=True but the dataset has only len={self.num_rows} rows: "
                "no batch could be formed"
            )
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.refill = bool(refill)
        row_ids, self.valid_columns = _text_id_matrix(dataset, valid_columns)
        self._planner = _NoDuplicatesPlanner(row_ids)
        self._warned = False

    def _state_extra(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "num_rows": self.num_rows, "drop_last": self.drop_last}

    def _plan(self, epoch: int) -> list[np.ndarray]:
        if self.num_rows == 0:
            return []
        g = _generator(self.seed, epoch)
        planner = self._planner
        batches = planner.one_pass(_randperm(self.num_rows, g), self.batch_size, self.drop_last)
        expected = len(self)
        if len(batches) >= expected:
            return batches
        if self.refill and batches:
            first = len(batches)
            for _ in range(_MAX_REFILL_PASSES):
                for b in planner.one_pass(_randperm(self.num_rows, g), self.batch_size, self.drop_last):
                    batches.append(b)
                    if len(batches) >= expected:
                        break
                if len(batches) >= expected:
                    break
            self._warn(
                f"NoDuplicatesBatchSampler: one pass gave {first} of {expected} batches (epoch {epoch}); "
                f"{len(batches) - first} batches were drawn from extra reshuffled passes and repeat some rows"
            )
        if len(batches) < expected:
            self._warn(
                f"NoDuplicatesBatchSampler: only {len(batches)} of {expected} batches (epoch {epoch}); the dataset "
                f"has too few mutually distinct rows for batch_size={self.batch_size}"
            )
        return batches

    def _warn(self, msg: str) -> None:
        if not self._warned:
            logger.warning(msg)
            self._warned = True

    def _to_output(self, item: np.ndarray) -> list[int]:
        return item.tolist()

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_rows // self.batch_size
        return (self.num_rows + self.batch_size - 1) // self.batch_size


# --------------------------------------------------------------------------------------------------------------------


class MultiDatasetBatchSampler(_EpochPlanSampler[tuple[int, list[int]]]):
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

    def __init__(
        self, samplers: Sequence[_EpochPlanSampler[Any]], strategy: str = "round_robin", seed: int = 0
    ) -> None:
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
        order = slots[torch.randperm(slots.size, generator=_generator(self.seed, epoch)).numpy()]
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
