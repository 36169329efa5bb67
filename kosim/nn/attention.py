"""Self-attention over packed sequences: tokens are gathered into padded per-length-bucket grids and back.

A packed batch keeps every token state in one `[tokens, hidden]` tensor; attention alone needs sequences laid
out side by side, so each length bucket becomes a `[seqs_b, len_b]` grid (`kosim.nn.packing`), attention runs per
grid with a key mask, and the outputs are read back into `[tokens, hidden]`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from kosim.nn.dropout import keep_mask, masked_scale
from kosim.nn.packing import PackedBatch


class _GridScatter(torch.autograd.Function):
    """`[tokens, c]` -> `[slots, c]` by one gather; backward reads each token's own slot back.

    Padding slots hold a copy of a real token (finite values under a masked-out key, outputs never read), so
    their gradient is zero and the backward is a gather too (no scatter-add).
    """

    @staticmethod
    def forward(ctx, x: Tensor, grid_index: Tensor, token_slot: Tensor) -> Tensor:
        ctx.save_for_backward(token_slot)
        return x.index_select(0, grid_index)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (token_slot,) = ctx.saved_tensors
        return grad.index_select(0, token_slot), None, None


class AttentionGrid:
    """How attention sees a batch: one or more padded `[seqs_b, len_b]` grids plus their key masks.

    For a padded batch the grid is the input itself. For a packed batch, sequences are bucketed by length
    (`PackedBatch.buckets`), each bucket a grid; tokens are gathered into the grids through `grid_index`
    and read back through `token_slot`.
    """

    def __init__(
        self,
        buckets: tuple[tuple[int, int], ...],
        key_masks: list[Tensor],
        grid_index: Tensor | None,
        token_slot: Tensor | None,
    ):
        self.buckets = buckets  # (seqs, len) of each grid
        self.key_masks = key_masks  # [seqs_b, 1, 1, len_b] bool per grid, True = attend
        self.grid_index = grid_index  # [slots] or None when the input is already padded
        self.token_slot = token_slot  # [tokens] or None

    @property
    def num_seqs(self) -> int:
        return sum(s for s, _ in self.buckets)

    @property
    def max_len(self) -> int:
        return max((n for _, n in self.buckets), default=0)

    @classmethod
    def from_packed(cls, batch: PackedBatch) -> AttentionGrid:
        if batch.grid_index is None:  # a PackedBatch built by hand: one grid, laid out by pad_index
            grid_index = torch.zeros(batch.num_seqs * batch.max_len, dtype=torch.long, device=batch.input_ids.device)
            grid_index = grid_index.index_copy(
                0, batch.pad_index, torch.arange(batch.num_tokens, device=batch.input_ids.device)
            )
            mask = torch.zeros_like(grid_index, dtype=torch.bool).index_fill(0, batch.pad_index, True)
            return cls(
                ((batch.num_seqs, batch.max_len),),
                [mask.view(batch.num_seqs, 1, 1, batch.max_len)],
                grid_index,
                batch.pad_index,
            )
        masks, offset = [], 0
        for seqs, length in batch.buckets:
            masks.append(batch.grid_mask[offset : offset + seqs * length].view(seqs, 1, 1, length))
            offset += seqs * length
        return cls(batch.buckets, masks, batch.grid_index, batch.token_slot)

    @classmethod
    def from_mask(cls, attention_mask: Tensor) -> AttentionGrid:
        seqs, max_len = attention_mask.shape
        return cls(((seqs, max_len),), [attention_mask.bool().view(seqs, 1, 1, max_len)], None, None)

    def scatter(self, x: Tensor) -> list[Tensor]:
        """`[tokens, c]` (or already `[seqs, len, c]`) -> one `[seqs_b, len_b, c]` per grid."""
        if self.grid_index is None:
            return [x]
        if torch.is_grad_enabled() and x.requires_grad:
            flat = _GridScatter.apply(x, self.grid_index, self.token_slot)
        else:
            flat = x.index_select(0, self.grid_index)
        if len(self.buckets) == 1:
            seqs, length = self.buckets[0]
            return [flat.view(seqs, length, x.shape[-1])]
        parts = flat.split([s * n for s, n in self.buckets])
        return [p.view(s, n, x.shape[-1]) for p, (s, n) in zip(parts, self.buckets)]

    def gather(self, parts: list[Tensor]) -> Tensor:
        """One `[seqs_b, len_b, c]` per grid -> `[tokens, c]` (identity for a padded batch)."""
        if self.grid_index is None:
            return parts[0]
        flat = torch.cat([p.reshape(-1, p.shape[-1]) for p in parts]) if len(parts) > 1 else parts[0].flatten(0, 1)
        return flat.index_select(0, self.token_slot)

    def attention(self, qkv: Tensor, num_heads: int, dropout_p: float = 0.0) -> Tensor:
        """Multi-head self-attention of fused `qkv` (`[tokens, 3 * hidden]` or `[seqs, len, 3 * hidden]`)."""
        hidden = qkv.shape[-1] // 3
        head_dim = hidden // num_heads
        outs = []
        for part, mask in zip(self.scatter(qkv), self.key_masks):
            seqs, length, _ = part.shape
            heads = part.view(seqs, length, 3, num_heads, head_dim).permute(2, 0, 3, 1, 4)  # [3, seqs, h, len, d]
            if dropout_p > 0.0 and qkv.device.type == "cpu":
                o = attention_with_dropout(heads.reshape(3, seqs * num_heads, length, head_dim), mask, dropout_p)
                o = o.view(seqs, num_heads, length, head_dim)
            else:
                q, k, v = heads.unbind(0)
                o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
            outs.append(o.transpose(1, 2).reshape(seqs, length, hidden))  # from [seqs, heads, len, head_dim]
        return self.gather(outs)


def attention_with_dropout(qkv: Tensor, key_mask: Tensor, dropout_p: float) -> Tensor:
    """Softmax attention with dropout on the probabilities, its masks drawn by `kosim.nn.dropout`.

    `qkv`: `[3, seqs * heads, len, head_dim]` (sequence-major batch); `key_mask`: `[seqs, 1, 1, len]` bool,
    True = attend (every sequence attends to at least one key). Returns `[seqs * heads, len, head_dim]`.
    Computes `F.scaled_dot_product_attention(q, k, v, key_mask, dropout_p)` with kosim's dropout masks: on CPU,
    PyTorch's fused kernel has no dropout and its fallback draws a float per probability, which cost more than
    the attention's matmuls. The key mask enters as the additive input of `baddbmm`, which also applies the
    `1 / sqrt(head_dim)` scale, so neither costs a pass over the scores.
    """
    q, k, v = qkv.unbind(0)  # [seqs * heads, len, head_dim] each
    seqs, length = key_mask.shape[0], key_mask.shape[-1]
    heads = q.shape[0] // seqs
    bias = torch.zeros(key_mask.shape, dtype=q.dtype, device=q.device).masked_fill_(~key_mask, float("-inf"))
    bias = bias.expand(seqs, heads, 1, length).reshape(seqs * heads, 1, length)
    scores = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=q.shape[-1] ** -0.5)  # [seqs * heads, len, len]
    probs = torch.softmax(scores, dim=-1)
    keep, keep_prob = keep_mask(probs.shape, dropout_p)
    return torch.bmm(masked_scale(probs, keep), v).mul_(
        1.0 / keep_prob
    )  # the dropout scale, applied to the smaller tensor


__all__ = ["AttentionGrid"]
