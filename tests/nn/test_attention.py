"""Attention with kosim's dropout masks against an einsum reference and PyTorch's SDPA."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import from_padded_grids, grid_rows, to_padded_grids

from kosim.nn import pack
from kosim.nn.attention import AttentionGrid, attention_with_dropout
from kosim.nn.dropout import keep_mask


def _inputs(seqs=5, heads=3, length=9, head_dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    qkv = torch.randn(3, seqs * heads, length, head_dim, generator=g, requires_grad=True)
    lengths = torch.tensor([9, 4, 1, 7, 2])[:seqs]
    key_mask = (torch.arange(length) < lengths[:, None]).view(seqs, 1, 1, length)
    return qkv, key_mask


def _reference(qkv, key_mask, keep, keep_prob):
    """Attention written out: einsum scores, masked softmax, dropout as a multiply by keep / keep_prob."""
    q, k, v = qkv
    seqs, length = key_mask.shape[0], key_mask.shape[-1]
    heads = q.shape[0] // seqs
    scores = torch.einsum("bid,bjd->bij", q, k) / q.shape[-1] ** 0.5
    allowed = key_mask.expand(seqs, heads, length, length).reshape(-1, length, length)
    weights = scores.exp() * allowed
    probs = weights / weights.sum(-1, keepdim=True)
    return torch.einsum("bij,bjd->bid", probs * keep.float() / keep_prob, v)


def test_dropout_attention_matches_written_out_reference_with_the_same_masks():
    qkv, key_mask = _inputs()
    grad = torch.randn(15, 9, 8)
    torch.manual_seed(5)
    out = attention_with_dropout(qkv, key_mask, 0.3)
    (gq,) = torch.autograd.grad(out, qkv, grad)
    torch.manual_seed(5)
    keep, keep_prob = keep_mask((15, 9, 9), 0.3)
    assert 0 < keep.logical_not().sum() < keep.numel()
    ref = _reference(qkv, key_mask, keep, keep_prob)
    (gr,) = torch.autograd.grad(ref, qkv, grad)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gq, gr, atol=1e-5, rtol=1e-5)


def test_dropout_attention_without_drops_equals_sdpa():
    # p = 1e-6 rounds to no drops at all (keep probability exactly 1): the fast path must then be plain SDPA
    qkv, key_mask = _inputs(seed=1)
    grad = torch.randn(15, 9, 8)
    out = attention_with_dropout(qkv, key_mask, 1e-6)
    (g_ours,) = torch.autograd.grad(out, qkv, grad)
    q, k, v = (t.view(5, 3, 9, 8) for t in qkv)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask).reshape(15, 9, 8)
    (g_ref,) = torch.autograd.grad(ref, qkv, grad)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_ours, g_ref, atol=1e-5, rtol=1e-5)


def test_grid_attention_in_training_uses_dropout_and_keeps_eval_exact():
    batch = pack([[5] * n for n in (3, 17, 5, 40, 2, 9)])
    grid = AttentionGrid.from_packed(batch)
    qkv = torch.randn(batch.num_tokens, 3 * 16, generator=torch.Generator().manual_seed(2))
    plain = grid.attention(qkv, num_heads=4)
    torch.manual_seed(0)
    dropped = grid.attention(qkv, num_heads=4, dropout_p=0.5)
    assert plain.shape == dropped.shape == (batch.num_tokens, 16)
    assert not torch.allclose(plain, dropped)
    torch.manual_seed(0)
    assert torch.equal(grid.attention(qkv, num_heads=4, dropout_p=0.5), dropped)
    torch.testing.assert_close(grid.attention(qkv, num_heads=4, dropout_p=1e-6), plain, atol=1e-5, rtol=1e-5)


def _attention_through_padded_grids(grid, lengths, bucketed, qkv, num_heads, dropout_p):
    """The grids' attention on zero-padded grids copied sequence by sequence, heads by a permuting copy."""
    hidden = qkv.shape[-1] // 3
    rows = grid_rows(lengths, grid.buckets, bucketed)
    outs = []
    for part, mask in zip(to_padded_grids(qkv, lengths, grid.buckets, rows), grid.key_masks):
        seqs, length, _ = part.shape
        heads = part.view(seqs, length, 3, num_heads, hidden // num_heads).permute(2, 0, 3, 1, 4)
        if dropout_p > 0.0:
            o = attention_with_dropout(heads.reshape(3, seqs * num_heads, length, -1), mask, dropout_p)
            o = o.view(seqs, num_heads, length, -1)
        else:
            o = F.scaled_dot_product_attention(*heads.unbind(0), attn_mask=mask)
        outs.append(o.transpose(1, 2).reshape(seqs, length, hidden))
    return from_padded_grids(outs, lengths, rows)


@pytest.mark.parametrize("dropout_p", [0.0, 0.2])
@pytest.mark.parametrize("bucketed", [True, False])
def test_head_layout_attention_equals_the_padded_reference(dropout_p, bucketed):
    """One row gather each way (HeadLayout) gives the outputs and gradients of attention on padded grids."""
    import dataclasses

    lengths = [3, 17, 5, 40, 2, 9, 33, 1, 12, 25, 6, 40, 8, 19]
    rng = torch.Generator().manual_seed(0)
    batch = pack([torch.randint(5, 50, (n,), generator=rng).tolist() for n in lengths])
    if not bucketed:  # a PackedBatch built by hand: one grid laid out by pad_index
        batch = dataclasses.replace(batch, grid_index=None, token_slot=None, grid_mask=None, buckets=())
    grid = AttentionGrid.from_packed(batch)
    assert len(grid.buckets) > 1 if bucketed else len(grid.buckets) == 1
    qkv = torch.randn(batch.num_tokens, 3 * 4 * 8, generator=rng, requires_grad=True)
    grad = torch.randn(batch.num_tokens, 4 * 8, generator=rng)
    torch.manual_seed(1)
    out = grid.attention(qkv, num_heads=4, dropout_p=dropout_p)
    (g_out,) = torch.autograd.grad(out, qkv, grad)
    torch.manual_seed(1)
    ref = _attention_through_padded_grids(AttentionGrid.from_packed(batch), lengths, bucketed, qkv, 4, dropout_p)
    (g_ref,) = torch.autograd.grad(ref, qkv, grad)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(g_out, g_ref, atol=1e-6, rtol=1e-6)
    with torch.no_grad():
        torch.manual_seed(1)
        torch.testing.assert_close(grid.attention(qkv, num_heads=4, dropout_p=dropout_p), ref, atol=1e-6, rtol=1e-6)
