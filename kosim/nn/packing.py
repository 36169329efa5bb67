"""PackedBatch: the padding-free input format of kosim's encoder.

All sequences of a batch (all columns of a training batch together) are concatenated into one flat run of
tokens, so embeddings, projections, feed-forward and LayerNorm never touch a padding token. Attention, the
only op that mixes tokens, scatters each sequence into a padded `[seqs, max_len]` grid through `pad_index`
and gathers back. Everything here is built with vectorised numpy at collation time: no host syncs later.
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
        return pack_flat(ids, np.diff(cu[start : stop + 1]))


def pack_flat(ids: np.ndarray, lengths: np.ndarray) -> PackedBatch:
    """Pack sequences given as one flat id array `[tokens]` and their `lengths [seqs]`."""
    lengths = np.asarray(lengths, dtype=np.int64)
    num_seqs = int(lengths.shape[0])
    if num_seqs and int(lengths.min()) <= 0:
        raise ValueError(f"sequence {int(np.argmin(lengths))} is empty: every sequence needs at least one token")
    cu = np.zeros(num_seqs + 1, dtype=np.int64)
    np.cumsum(lengths, out=cu[1:])
    num_tokens = int(cu[-1])
    if ids.shape[0] != num_tokens:
        raise ValueError(f"ids has {ids.shape[0]} tokens but lengths sum to {num_tokens}")
    max_len = int(lengths.max()) if num_seqs else 0
    seq_index = np.repeat(np.arange(num_seqs, dtype=np.int64), lengths)
    positions = np.arange(num_tokens, dtype=np.int64) - cu[:-1][seq_index]
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
    )


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
