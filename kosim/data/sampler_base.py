"""What every kosim batch sampler shares: seeded per-epoch draws, a whole-epoch plan, and resumable state.

:class:`EpochPlanSampler` plans a whole epoch up front (``_plan(epoch)``), counts the batches it has handed out and
resumes mid-epoch from :meth:`~EpochPlanSampler.state_dict`; :class:`FixedBatchSampler` adds the members of the
samplers that cut one dataset into batches of ``batch_size`` rows (validation, ``len()``, the settings checked on
resume).  See :mod:`kosim.data.samplers` for the semantics.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import numpy as np
import torch

__all__ = ["EpochPlanSampler", "FixedBatchSampler", "epoch_generator", "randperm"]

T = TypeVar("T")


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A fresh ``torch.Generator`` seeded ``seed + epoch``: an epoch's draws depend on nothing else."""
    g = torch.Generator()
    g.manual_seed(int(seed) + int(epoch))
    return g


def randperm(n: int, g: torch.Generator) -> np.ndarray:
    """``torch.randperm(n)`` drawn from ``g``, as numpy."""
    # int32 when it fits, like ST (the permutation itself does not depend on the dtype).
    dtype = torch.int32 if n <= np.iinfo(np.int32).max else torch.int64
    return torch.randperm(n, generator=g, dtype=dtype).numpy()


class EpochPlanSampler(abc.ABC, Generic[T]):
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


class FixedBatchSampler(EpochPlanSampler[list[int]]):
    """An epoch-plan sampler over ``num_rows`` rows of one dataset, in batches of ``batch_size`` row indices.

    Holds and validates ``batch_size`` / ``drop_last``, gives ST's ``len()`` (``num_rows // batch_size`` with
    ``drop_last``, else the ceiling), stores the three settings with the state (so a different dataset or batch
    size cannot resume), and yields each planned index array as ``list[int]``.

    Raises:
        ValueError: ``batch_size < 1``, or ``drop_last`` with fewer rows than ``batch_size``.
    """

    def __init__(self, num_rows: int, batch_size: int, drop_last: bool, seed: int) -> None:
        super().__init__(seed)
        self.num_rows = int(num_rows)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if drop_last and self.num_rows < batch_size:
            raise ValueError(
                f"batch_size={batch_size} with drop_last=True but the dataset has only len={self.num_rows} rows: "
                "no batch could be formed"
            )
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)

    def _state_extra(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "num_rows": self.num_rows, "drop_last": self.drop_last}

    def _to_output(self, item: np.ndarray) -> list[int]:
        return item.tolist()

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_rows // self.batch_size
        return (self.num_rows + self.batch_size - 1) // self.batch_size
