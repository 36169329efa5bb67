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


class _RowGather(torch.autograd.Function):
    """`rows[index]` of a `[n, d]` tensor whose backward is a gather too: `grad_rows = grad[inverse]`, then zero
    at `zero_rows` (input rows no output holds).

    `inverse[r]` is the output row holding input row `r`. Exact where every other output row reading `r` gets a
    zero gradient: the padding slots of the attention grids (masked-out keys, queries whose outputs are never
    read), whose gradient a scatter-add would add as zeros.
    """

    @staticmethod
    def forward(ctx, rows: Tensor, index: Tensor, inverse: Tensor, zero_rows: Tensor | None) -> Tensor:
        ctx.save_for_backward(inverse, zero_rows)
        return rows.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: Tensor):
        inverse, zero_rows = ctx.saved_tensors
        out = grad.index_select(0, inverse)
        return (out if zero_rows is None else out.index_fill_(0, zero_rows, 0)), None, None, None


def _gather_rows(rows: Tensor, index: Tensor, inverse: Tensor, zero_rows: Tensor | None = None) -> Tensor:
    if torch.is_grad_enabled() and rows.requires_grad:
        return _RowGather.apply(rows, index, inverse, zero_rows)
    return rows.index_select(0, index)


class HeadLayout:
    """Row maps between packed token states and the grids' head-major layout, built once per forward.

    The grids hold `[3, seqs_b * heads, len_b, d]` (q, k, v) and `[seqs_b * heads, len_b, d]` (outputs); each
    direction is one gather of `d`-wide rows, forward and backward, where `scatter` + a permuting copy and a
    transposing copy + `gather` took two passes each way. Rows are numbered as in `[tokens, 3, heads]` (packed
    qkv), `[3, seqs_b, heads, len_b]` per grid (q, k, v), `[seqs_b, heads, len_b]` per grid (outputs, the grids
    concatenated) and `[tokens, heads]` (packed outputs).
    """

    def __init__(self, grid: AttentionGrid, num_heads: int, num_tokens: int):
        device, h = grid.grid_index.device, num_heads
        self.num_heads, self.num_tokens = num_heads, num_tokens
        head = torch.arange(h, device=device)
        qkv_parts, real_parts, out_parts, pad_parts, offset = [], [], [], [], 0
        for (seqs, length), mask in zip(grid.buckets, grid.key_masks):
            slots = seqs * length
            token = grid.grid_index[offset : offset + slots].view(1, seqs, 1, length)
            which = torch.arange(3, device=device).view(3, 1, 1, 1)
            qkv_parts.append((token * (3 * h) + which * h + head.view(1, 1, h, 1)).flatten())  # [3, s, h, l]
            real_parts.append(mask.view(1, seqs, 1, length).expand(3, seqs, h, length).flatten())
            pad_parts.append(mask.view(seqs, 1, length).logical_not().expand(seqs, h, length).flatten())
            seq = torch.arange(seqs, device=device).view(seqs, 1, 1)
            pos = torch.arange(length, device=device).view(1, length, 1)
            out_parts.append((h * offset + (seq * h + head.view(1, 1, h)) * length + pos).flatten())  # [s, l, h]
            offset += slots
        self.qkv_index = torch.cat(qkv_parts)  # [3 * heads * slots]: packed qkv row of each grid row
        real = torch.cat(real_parts)  # the grid rows holding their own sequence's token
        rows = num_tokens * 3 * h  # padding rows write to one spare entry past the end (no host sync to skip them)
        target = torch.where(real, self.qkv_index, rows)
        inverse = torch.empty(rows + 1, dtype=torch.long, device=device)
        inverse.index_copy_(0, target, torch.arange(target.shape[0], device=device))
        self.qkv_inverse = inverse[:rows]  # grid row of each packed qkv row
        slot_rows = torch.cat(out_parts).view(offset, h)  # output rows of each slot's heads
        self.out_index = slot_rows.index_select(0, grid.token_slot).flatten()  # [tokens * heads]
        self.out_inverse = torch.zeros(h * offset, dtype=torch.long, device=device)  # padding rows: zeroed after
        self.out_inverse.index_copy_(0, self.out_index, torch.arange(num_tokens * h, device=device))
        padding = torch.cat(pad_parts).to(torch.int8)  # 1 at the output rows of padding slots
        self.out_padding = padding.argsort(descending=True, stable=True)[: h * (offset - num_tokens)]

    def to_grids(self, qkv: Tensor, buckets: tuple[tuple[int, int], ...], num_heads: int) -> list[Tensor]:
        """Packed `[tokens, 3 * hidden]` -> one `[3, seqs_b * heads, len_b, d]` per grid."""
        d = qkv.shape[-1] // (3 * num_heads)
        flat = _gather_rows(qkv.reshape(-1, d), self.qkv_index, self.qkv_inverse)
        parts = flat.split([3 * num_heads * s * n for s, n in buckets])
        return [p.view(3, s * num_heads, n, d) for p, (s, n) in zip(parts, buckets)]

    def to_tokens(self, outs: list[Tensor]) -> Tensor:
        """One `[seqs_b * heads, len_b, d]` per grid -> packed `[tokens, heads * d]`."""
        d = outs[0].shape[-1]
        flat = torch.cat([o.reshape(-1, d) for o in outs]) if len(outs) > 1 else outs[0].reshape(-1, d)
        rows = _gather_rows(flat, self.out_index, self.out_inverse, self.out_padding)  # [tokens * heads, d]
        return rows.view(self.num_tokens, self.num_heads * d)


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
        self._layouts: dict[int, HeadLayout] = {}  # by head count, built on first use (every layer shares it)

    def head_layout(self, num_heads: int) -> HeadLayout:
        """The row maps of `HeadLayout` for `num_heads` heads (packed batches only), built once."""
        if num_heads not in self._layouts:
            self._layouts[num_heads] = HeadLayout(self, num_heads, int(self.token_slot.shape[0]))
        return self._layouts[num_heads]

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

    def attention(self, qkv: Tensor, num_heads: int, dropout_p: float = 0.0) -> Tensor:
        """Multi-head self-attention of fused `qkv` (`[tokens, 3 * hidden]` or `[seqs, len, 3 * hidden]`)."""
        hidden = qkv.shape[-1] // 3
        if self.grid_index is None:  # padded: the input is the grid
            seqs, length, _ = qkv.shape
            heads = qkv.view(seqs, length, 3, num_heads, hidden // num_heads).permute(2, 0, 3, 1, 4)
            grids = [heads.reshape(3, seqs * num_heads, length, hidden // num_heads)]
            return (
                self._attend(grids, num_heads, dropout_p, qkv.device)[0]
                .view(seqs, num_heads, length, -1)
                .transpose(1, 2)
                .reshape(seqs, length, hidden)
            )
        layout = self.head_layout(num_heads)
        return layout.to_tokens(
            self._attend(layout.to_grids(qkv, self.buckets, num_heads), num_heads, dropout_p, qkv.device)
        )

    def _attend(self, grids: list[Tensor], num_heads: int, dropout_p: float, device: torch.device) -> list[Tensor]:
        """Attention of each grid: `[3, seqs_b * heads, len_b, d]` -> `[seqs_b * heads, len_b, d]`."""
        outs = []
        for heads, mask in zip(grids, self.key_masks):
            if dropout_p > 0.0 and device.type == "cpu":
                outs.append(attention_with_dropout(heads, mask, dropout_p))
                continue
            seqs = mask.shape[0]
            q, k, v = (t.view(seqs, num_heads, t.shape[1], t.shape[2]) for t in heads.unbind(0))
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
            outs.append(o.reshape(seqs * num_heads, o.shape[2], o.shape[3]))
        return outs


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
