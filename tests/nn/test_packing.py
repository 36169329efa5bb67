"""PackedBatch layout (bucketed attention grids) and bucketed attention against a single padded grid."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from helpers import from_padded_grids, grid_rows, to_padded_grids

from kosim.nn import load_encoder, pack, pack_flat
from kosim.nn.attention import AttentionGrid
from kosim.nn.packing import plan_buckets

MIXED = [3, 17, 5, 40, 2, 9, 33, 1, 12, 25, 6, 40, 8, 19]  # lengths that make several buckets


def _seqs(lengths, seed=0, vocab=50):
    rng = np.random.default_rng(seed)
    return [rng.integers(5, vocab, size=n).tolist() for n in lengths]


def _single_grid(batch):
    """The same batch without bucketing: attention falls back to one [seqs, max_len] grid through pad_index."""
    return dataclasses.replace(batch, grid_index=None, token_slot=None, grid_mask=None, buckets=())


def test_grid_layout_is_consistent():
    batch = pack(_seqs(MIXED))
    assert len(batch.buckets) > 1
    assert sum(s for s, _ in batch.buckets) == batch.num_seqs
    assert batch.grid_index.shape[0] == sum(s * n for s, n in batch.buckets) == batch.grid_mask.shape[0]
    # every token sits in exactly one slot and is gathered back from it
    assert torch.equal(batch.grid_index[batch.token_slot], torch.arange(batch.num_tokens))
    assert int(batch.grid_mask.sum()) == batch.num_tokens
    assert bool(batch.grid_mask[batch.token_slot].all())
    # padding slots hold a token of their own row's sequence (finite values under a masked-out key)
    offset = 0
    for seqs, width in batch.buckets:
        rows = batch.grid_index[offset : offset + seqs * width].view(seqs, width)
        owners = batch.seq_index[rows]
        assert bool((owners == owners[:, :1]).all())
        assert int(batch.lengths[owners[:, 0]].max()) == width  # a bucket is as wide as its longest sequence
        offset += seqs * width


def test_near_equal_lengths_stay_one_grid():
    assert len(pack(_seqs([30, 30, 29, 28, 30, 27])).buckets) == 1
    assert plan_buckets(np.array([7])) == [0, 1]
    sorted_lengths = np.array(sorted(MIXED, reverse=True))
    splits = plan_buckets(sorted_lengths)
    assert splits[0] == 0 and splits[-1] == len(MIXED) and splits == sorted(set(splits))


def test_empty_and_select_and_pack_padded():
    empty = pack_flat(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert empty.num_seqs == 0 and empty.buckets == () and empty.grid_index.numel() == 0
    batch = pack(_seqs(MIXED))
    sub = batch.select(slice(2, 6))
    assert sub.lengths.tolist() == MIXED[2:6] and sub.grid_index is not None
    ids, mask = batch.padded(0)
    from kosim.nn import pack_padded

    again = pack_padded(ids, mask)
    assert torch.equal(again.grid_index, batch.grid_index) and again.buckets == batch.buckets


@pytest.mark.parametrize("kind", ["bert_dir", "roberta_dir"])
def test_bucketed_attention_equals_single_grid(kind, request):
    path = request.getfixturevalue(kind)
    model = load_encoder(path, json.loads((path / "config.json").read_text()))
    for m in model.modules():  # dropout off so both layouts compute the same function
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    for layer in model.layers:
        layer.attn.dropout_p = 0.0
    lengths = [min(n, model.max_sequence_length) for n in MIXED]
    batch = pack(_seqs(lengths, vocab=model.config.vocab_size))
    assert len(batch.buckets) > 1
    weights = torch.randn(batch.num_tokens, model.hidden_size, generator=torch.Generator().manual_seed(0))

    out = {}
    grads = {}
    for name, b in (("bucketed", batch), ("single", _single_grid(batch))):
        model.zero_grad()
        y = model(b)
        (y * weights).sum().backward()
        out[name] = y.detach()
        grads[name] = {n: p.grad.clone() for n, p in model.named_parameters()}
    assert (out["bucketed"] - out["single"]).abs().max().item() <= 1e-5
    for name, g in grads["single"].items():
        torch.testing.assert_close(grads["bucketed"][name], g, atol=1e-5, rtol=1e-4, msg=name)

    # the padded reference agrees too (token by token)
    ids, mask = batch.padded(model.config.pad_token_id)
    with torch.no_grad():
        padded = model.forward_padded(ids, mask)[mask.bool()]
    assert (padded - out["bucketed"]).abs().max().item() <= 1e-5


def test_grid_index_lays_tokens_out_as_the_padded_reference():
    batch = pack(_seqs(MIXED))
    grid = AttentionGrid.from_packed(batch)
    x = torch.randn(batch.num_tokens, 4, requires_grad=True)
    rows = grid_rows(MIXED, grid.buckets, bucketed=True)
    reference = to_padded_grids(x.detach(), MIXED, grid.buckets, rows)
    flat = x.index_select(0, grid.grid_index)  # [slots, 4]
    parts = [p.view(s, n, 4) for p, (s, n) in zip(flat.split([s * n for s, n in grid.buckets]), grid.buckets)]
    for part, ref, mask, members in zip(parts, reference, grid.key_masks, rows):
        real = torch.arange(part.shape[1]) < torch.tensor([MIXED[seq] for seq in members])[:, None]
        assert torch.equal(mask.view(real.shape), real)  # the key mask is True exactly on the real slots
        assert torch.equal(part.detach()[real], ref[real])  # which hold the reference's tokens
    assert torch.equal(from_padded_grids(parts, MIXED, rows), x)  # read back through the reference
    assert torch.equal(flat.index_select(0, grid.token_slot), x)  # and through token_slot
    # each token sits in exactly one real slot: a loss on real slots only gives every token gradient 1
    loss = sum((p * m.view(p.shape[0], p.shape[1], 1)).sum() for p, m in zip(parts, grid.key_masks))
    loss.backward()
    assert torch.equal(x.grad, torch.ones_like(x))
