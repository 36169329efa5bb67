"""The no-duplicates batch sampler: batches in which no text occurs twice (sentence-transformers' semantics).

:class:`NoDuplicatesPlanner` is the algorithm (a greedy walk over integer text ids, vectorised per window of
candidate rows); :class:`NoDuplicatesBatchSampler` plans each epoch with it, tops short epochs up like ST, and
checks each plan once: a plan with no useful batch is an error (when the caller says how many rows a batch needs),
one whose batches shrank to less than half the requested size on average is a warning with the numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from kosim.data.datasets import ColumnDataset
from kosim.data.parsing import DataError
from kosim.data.sampler_base import FixedBatchSampler, epoch_generator, randperm
from kosim.data.tokenized import TokenizedDataset
from kosim.utils.suggest import did_you_mean

__all__ = ["NoDuplicatesBatchSampler", "NoDuplicatesPlanner", "text_id_matrix"]

# The sampler's messages keep the logger name they had before this module was split out of kosim.data.samplers.
logger = logging.getLogger("kosim.data.samplers")

# Extra reshuffled passes NoDuplicatesBatchSampler may make to reach its advertised length (as ST does).
_MAX_REFILL_PASSES = 2


class NoDuplicatesPlanner:
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


def text_id_matrix(
    dataset: ColumnDataset | TokenizedDataset, valid_columns: Sequence[str] | None
) -> tuple[np.ndarray, list[str]]:
    """``[rows, compared columns]`` ``int64`` text ids (dense, small values) and the names of those columns."""
    names = list(dataset.column_names)
    if valid_columns is None:
        use = names
    else:
        use = list(valid_columns)
        for c in use:
            if c not in names:
                raise ValueError(f"valid_columns: no column {c!r}; columns are {names}{did_you_mean(c, names)}")
        if not use:
            raise ValueError("valid_columns must name at least one column")
    per_column = dataset.text_ids
    mat = np.stack([np.asarray(per_column[names.index(c)], dtype=np.int64) for c in use], axis=1)
    if mat.size and (mat.min() < 0 or mat.max() >= 4 * mat.size + 16):
        # Arbitrary ids (e.g. hashes): compress to a dense range so the lookup tables stay small.
        mat = np.unique(mat, return_inverse=True)[1].reshape(mat.shape).astype(np.int64)
    return mat, use


class NoDuplicatesBatchSampler(FixedBatchSampler):
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

    Each epoch's plan is checked once, when it is made.  Without ``drop_last``, duplicates shrink batches instead of
    dropping them: an epoch of more than twice ``len()`` batches (half the rows per batch or fewer, on average)
    logs a warning with the numbers.  With ``min_batch_rows`` (e.g. 2 for losses that use the other rows of the
    batch as negatives) a plan in which no batch holds that many rows (``batch_size`` if smaller), or that has no
    batch at all, raises :class:`~kosim.data.DataError` instead of training on nothing.

    Text ids are taken once from ``TokenizedDataset.text_ids`` or computed once from a ``ColumnDataset``; planning
    an epoch of 1M rows at batch size 8192 takes a few seconds.

    Args:
        dataset: a :class:`ColumnDataset` or :class:`TokenizedDataset`.
        batch_size: rows per batch.
        drop_last: discard batches that could not be filled.
        seed: base seed; epoch ``e`` uses ``seed + e``.
        valid_columns: names of the text columns compared for duplicates (default: all).
        refill: top a short epoch up to ``len()`` batches with extra passes, as ST does.
        min_batch_rows: the fewest rows a batch needs to be of any use; ``None`` (the default) yields whatever the
            data allows, as ST does.

    Raises:
        ValueError: ``drop_last`` with fewer rows than ``batch_size``; unknown ``valid_columns``; ``min_batch_rows``
            below 1.
        DataError: (when an epoch is planned) with ``min_batch_rows``, a plan without a single useful batch.
    """

    def __init__(
        self,
        dataset: ColumnDataset | TokenizedDataset,
        batch_size: int,
        drop_last: bool = False,
        seed: int = 0,
        valid_columns: Sequence[str] | None = None,
        refill: bool = True,
        min_batch_rows: int | None = None,
    ) -> None:
        super().__init__(len(dataset), batch_size, drop_last, seed)
        if min_batch_rows is not None and (isinstance(min_batch_rows, bool) or int(min_batch_rows) < 1):
            raise ValueError(f"min_batch_rows must be None or >= 1, got {min_batch_rows!r}")
        self.refill = bool(refill)
        self.min_batch_rows = None if min_batch_rows is None else int(min_batch_rows)
        row_ids, self.valid_columns = text_id_matrix(dataset, valid_columns)
        self._planner = NoDuplicatesPlanner(row_ids)
        self._warned = False
        self._warned_small = False

    def _plan(self, epoch: int) -> list[np.ndarray]:
        batches = self._passes(epoch)
        self._check_plan(batches, epoch)
        return batches

    def _passes(self, epoch: int) -> list[np.ndarray]:
        """One pass over a fresh permutation, topped up from extra passes when it falls short of ``len()``."""
        if self.num_rows == 0:
            return []
        g = epoch_generator(self.seed, epoch)
        planner = self._planner
        batches = planner.one_pass(randperm(self.num_rows, g), self.batch_size, self.drop_last)
        expected = len(self)
        if len(batches) >= expected:
            return batches
        if self.refill and batches:
            first = len(batches)
            for _ in range(_MAX_REFILL_PASSES):
                for b in planner.one_pass(randperm(self.num_rows, g), self.batch_size, self.drop_last):
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

    def _check_plan(self, batches: list[np.ndarray], epoch: int) -> None:
        """Refuse a plan without a useful batch (``min_batch_rows``); warn when batches shrank to half or less."""
        largest = max((b.size for b in batches), default=0)
        rows = sum(b.size for b in batches)
        settings = f"batch_size={self.batch_size}, drop_last={self.drop_last}, compared columns {self.valid_columns}"
        if self.min_batch_rows is not None:
            need = min(self.min_batch_rows, self.batch_size)
            if largest < need:
                found = f"{len(batches)} batches of at most {largest} rows" if batches else "no batch at all"
                raise DataError(
                    f"NoDuplicatesBatchSampler: epoch {epoch} of {self.num_rows} rows gives {found} ({settings}); "
                    f"a useful batch needs at least {need} rows that share no text: the data is (nearly) all "
                    "duplicates, so training would learn nothing"
                )
        if batches and len(batches) > 2 * len(self) and not self._warned_small:
            self._warned_small = True
            logger.warning(
                f"NoDuplicatesBatchSampler: epoch {epoch} has {len(batches)} batches where {len(self)} were expected, "
                f"{rows / len(batches):.1f} rows each on average (largest {largest}; {settings}): many rows share a "
                "text, so batches shrink and in-batch losses see few negatives"
            )

    def _warn(self, msg: str) -> None:
        if not self._warned:
            logger.warning(msg)
            self._warned = True
