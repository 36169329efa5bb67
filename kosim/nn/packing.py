"""PackedBatch: the padding-free input format of kosim's encoder.

All sequences of a batch (all columns of a training batch together) are concatenated into one flat run of
tokens, so embeddings, projections, feed-forward and LayerNorm never touch a padding token. Attention, the
only op that mixes tokens, works on padded grids: the sequences are sorted by length and split into a few
buckets, each its own `[seqs_b, max_len_b]` grid, so a batch of mixed lengths does not pad every sequence to
the longest one (attention cost grows with the padded area). `grid_index` fills the grids by one gather,
`token_slot` reads the tokens back. Everything here is built with vectorised numpy at collation time: no host
syncs later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor


@dataclass
class PackedBatch:
    input_ids: Tensor  # [tokens] int64
    positions: Tensor  # [tokens] int64, 0-based position inside its sequence
    seq_index: Tensor  # [tokens] int64, which sequence each token belongs to
    pad_index: Tensor  # [tokens] int64, flat index into a [seqs * max_len] padded grid
    cu_seqlens: Tensor  # [seqs + 1] int64, token offsets of each sequence
    lengths: Tensor  # [seqs] int64
    num_seqs: int
    max_len: int
    num_tokens: int
    # Bucketed attention grids (built by `pack_flat`; None falls back to one `[seqs, max_len]` grid):
    grid_index: Tensor | None = None  # [slots] int64, token held by each grid slot (padding: a token of its row)
    token_slot: Tensor | None = None  # [tokens] int64, the grid slot of each token
    grid_mask: Tensor | None = None  # [slots] bool, True where the slot holds its own row's token
    buckets: tuple[tuple[int, int], ...] = ()  # (seqs, max_len) of each grid, laid out one after another
    prompt_lengths: Tensor | None = None  # [seqs] int64, prompt tokens opening each sequence (training prompts)

    def to(self, device: torch.device | str) -> PackedBatch:
        """Copy every tensor to `device` (non-blocking from pinned memory)."""
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            moved[f.name] = value.to(device, non_blocking=True) if isinstance(value, Tensor) else value
        return PackedBatch(**moved)

    def padded(self, pad_token_id: int) -> tuple[Tensor, Tensor]:
        """The same batch as right-padded `input_ids [seqs, max_len]` and `attention_mask [seqs, max_len]`."""
        grid = self.input_ids.new_full((self.num_seqs * self.max_len,), pad_token_id)
        grid[self.pad_index] = self.input_ids
        mask = torch.zeros(self.num_seqs * self.max_len, dtype=torch.long, device=self.input_ids.device)
        mask[self.pad_index] = 1
        return grid.view(self.num_seqs, self.max_len), mask.view(self.num_seqs, self.max_len)

    def select(self, seqs: slice) -> PackedBatch:
        """The sub-batch of sequences `seqs` (a contiguous slice), repacked on the host."""
        cu = self.cu_seqlens.cpu().numpy()
        start, stop, _ = seqs.indices(self.num_seqs)
        ids = self.input_ids.cpu().numpy()[cu[start] : cu[stop]]
        prompts = None if self.prompt_lengths is None else self.prompt_lengths.cpu().numpy()[start:stop]
        return pack_flat(ids, np.diff(cu[start : stop + 1]), prompts)


# Cost model of one attention grid, in units of one query-key score: a grid of `s` rows of `l` slots costs about
# s * l * (l + GRID_ROW_COST) + GRID_COST (per-row work of the CPU kernel, then per-call overhead). Fitted on
# PyTorch's CPU flash attention for head sizes 32 and 64; only the relative size matters.
GRID_ROW_COST = 32
GRID_COST = 8192
MAX_BUCKET_CANDIDATES = 16


def plan_buckets(sorted_lengths: np.ndarray) -> list[int]:
    """Split points of `sorted_lengths` (descending) into buckets minimising the attention cost model.

    Candidate split points are the 16-quantiles of the sequence count; a shortest path over them picks the
    split. A batch of near-equal lengths (an encode batch sorted by length) stays one grid.
    """
    n = int(sorted_lengths.shape[0])
    if n <= 1 or sorted_lengths[0] == sorted_lengths[-1]:
        return [0, n]
    points = np.unique(np.linspace(0, n, min(n, MAX_BUCKET_CANDIDATES) + 1).astype(np.int64))
    m = points.shape[0]
    lead = sorted_lengths[points[:-1]].astype(np.float64)  # longest sequence of a bucket starting at points[i]
    best = np.full(m, np.inf)
    best[0] = 0.0
    prev = np.zeros(m, dtype=np.int64)
    for j in range(1, m):
        rows = (points[j] - points[:j]).astype(np.float64)
        cost = best[:j] + rows * lead[:j] * (lead[:j] + GRID_ROW_COST) + GRID_COST
        i = int(np.argmin(cost))
        best[j], prev[j] = cost[i], i
    splits = [m - 1]
    while splits[-1] != 0:
        splits.append(int(prev[splits[-1]]))
    return [int(points[i]) for i in reversed(splits)]


def pack_flat(ids: np.ndarray, lengths: np.ndarray, prompt_lengths: np.ndarray | None = None) -> PackedBatch:
    """Pack sequences given as one flat id array `[tokens]` and their `lengths [seqs]` (and optionally the prompt
    tokens opening each sequence, `prompt_lengths [seqs]`, which `include_prompt=False` pooling leaves out)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    num_seqs = int(lengths.shape[0])
    if num_seqs and int(lengths.min()) <= 0:
        raise ValueError(f"sequence {int(np.argmin(lengths))} is empty: every sequence needs at least one token")
    cu = np.zeros(num_seqs + 1, dtype=np.int64)
    np.cumsum(lengths, out=cu[1:])
    num_tokens = int(cu[-1])
    if ids.shape[0] != num_tokens:
        raise ValueError(f"ids has {ids.shape[0]} tokens but lengths sum to {num_tokens}")
    if prompt_lengths is not None and np.shape(prompt_lengths) != (num_seqs,):
        raise ValueError(f"prompt_lengths has shape {np.shape(prompt_lengths)} for {num_seqs} sequences")
    max_len = int(lengths.max()) if num_seqs else 0
    seq_index = np.repeat(np.arange(num_seqs, dtype=np.int64), lengths)
    positions = np.arange(num_tokens, dtype=np.int64) - cu[:-1][seq_index]
    grid_index, token_slot, grid_mask, buckets = _grids(cu, lengths, seq_index, positions)
    return PackedBatch(
        input_ids=torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)),
        positions=torch.from_numpy(positions),
        seq_index=torch.from_numpy(seq_index),
        pad_index=torch.from_numpy(seq_index * max_len + positions),
        cu_seqlens=torch.from_numpy(cu),
        lengths=torch.from_numpy(lengths.copy()),
        num_seqs=num_seqs,
        max_len=max_len,
        num_tokens=num_tokens,
        grid_index=torch.from_numpy(grid_index),
        token_slot=torch.from_numpy(token_slot),
        grid_mask=torch.from_numpy(grid_mask),
        buckets=buckets,
        prompt_lengths=None if prompt_lengths is None else torch.from_numpy(np.array(prompt_lengths, dtype=np.int64)),
    )


def _grids(cu: np.ndarray, lengths: np.ndarray, seq_index: np.ndarray, positions: np.ndarray):
    """Bucketed attention grids: sequences by decreasing length, split by `plan_buckets`, each bucket a grid."""
    num_seqs = lengths.shape[0]
    if num_seqs == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.bool_), ()
    order = np.argsort(-lengths, kind="stable")
    sorted_lengths = lengths[order]
    splits = plan_buckets(sorted_lengths)
    row_len = np.empty(num_seqs, dtype=np.int64)  # grid width of each sequence, in `order`
    buckets = []
    for start, stop in zip(splits[:-1], splits[1:]):
        width = int(sorted_lengths[start])
        row_len[start:stop] = width
        buckets.append((stop - start, width))
    row_start = np.zeros(num_seqs, dtype=np.int64)  # first slot of each sequence's row, in `order`
    np.cumsum(row_len[:-1], out=row_start[1:])
    slots = int(row_start[-1] + row_len[-1])
    base = np.empty(num_seqs, dtype=np.int64)
    base[order] = row_start
    token_slot = base[seq_index] + positions
    # padding slots repeat the first token of their row: finite values under a masked-out key, never read back
    grid_index = np.repeat(cu[:-1][order], row_len)
    grid_index[token_slot] = np.arange(token_slot.shape[0], dtype=np.int64)
    grid_mask = np.zeros(slots, dtype=np.bool_)
    grid_mask[token_slot] = True
    return grid_index, token_slot, grid_mask, tuple(buckets)


def pack(sequences: Sequence[Sequence[int]]) -> PackedBatch:
    """Pack a list of token-id sequences (each already tokenized, special tokens included)."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    ids = np.fromiter((t for s in sequences for t in s), dtype=np.int64, count=int(lengths.sum()))
    return pack_flat(ids, lengths)


def pack_padded(input_ids: Tensor, attention_mask: Tensor) -> PackedBatch:
    """Pack a right- or left-padded batch `[seqs, len]` by dropping the positions where the mask is 0."""
    mask = attention_mask.bool().cpu()
    lengths = mask.sum(dim=1).numpy().astype(np.int64)
    ids = input_ids.cpu()[mask].numpy()
    return pack_flat(ids, lengths)
