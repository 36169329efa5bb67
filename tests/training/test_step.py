"""The training step: one forward for all columns, and gradient caching equal to the plain loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kosim.data.collate import collate
from kosim.data.datasets import ColumnDataset
from kosim.losses import CoSENTLoss, MatryoshkaLoss, MultipleNegativesRankingLoss
from kosim.model import SentenceEncoder
from kosim.training.step import embed_columns, loss_backward, row_chunks

ROWS = [
    ("한 남자가 춤을 추고 있다.", "남자가 춤춘다.", "여자가 잠을 잔다."),
    ("아이가 말을 타고 있다.", "아이가 동물을 탄다.", "아이가 밖에 없다."),
    ("비행기가 이륙하고 있다.", "비행기가 하늘로 간다.", "비행기가 착륙했다."),
    ("한 여성이 고기를 요리한다.", "여성이 요리 중이다.", "남자가 먹고 있다."),
    ("사람들이 기차를 타고 있다.", "사람들이 기차에 있다.", "사람들은 외계인이다."),
    ("개가 공을 잡는다.", "개가 놀고 있다.", "고양이가 잔다."),
]


def _data(model):
    ds = ColumnDataset(
        {"anchor": [r[0] for r in ROWS], "positive": [r[1] for r in ROWS], "negative": [r[2] for r in ROWS]},
        labels=np.linspace(0, 1, len(ROWS)),
    )
    return ds.tokenize(model.tokenize)


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_one_forward_equals_per_column_encode(bert_dir):
    model = SentenceEncoder.load(bert_dir).eval()
    tok = _data(model)
    batch = collate(tok, np.arange(len(ROWS)))
    with torch.no_grad():
        columns = embed_columns(model, batch)
    for c in range(3):
        expected = model.encode([r[c] for r in ROWS])
        np.testing.assert_allclose(columns[c].numpy(), expected, atol=1e-5)


@pytest.mark.parametrize(
    "loss", [MultipleNegativesRankingLoss(), MatryoshkaLoss(MultipleNegativesRankingLoss(), [32, 16, 8])]
)
def test_grad_cache_equals_plain_without_dropout(bert_dir, loss):
    model = SentenceEncoder.load(bert_dir).eval()
    batch = collate(_data(model), np.arange(len(ROWS)))
    plain = loss_backward(model, loss, batch)
    expected = _grads(model)
    model.zero_grad()
    cached = loss_backward(model, loss, batch, mini_batch_size=2)
    assert abs(plain.item() - cached.item()) <= 1e-5
    for name, g in _grads(model).items():
        torch.testing.assert_close(g, expected[name], atol=1e-5, rtol=1e-4, msg=name)


def test_grad_cache_replays_dropout(bert_dir):
    """With dropout on, the cached step equals a plain step whose mini-batches draw the same dropout masks."""
    model = SentenceEncoder.load(bert_dir).train()
    loss = CoSENTLoss()
    tok = _data(model)
    batch = collate(tok, np.arange(len(ROWS)))
    pair = type(batch)(batch.packed, batch.num_columns, batch.num_rows, batch.labels, batch.text_ids)

    torch.manual_seed(123)
    chunks = row_chunks(pair, 2)
    pieces = [embed_columns(model, c) for c in chunks]  # with graph, one RNG draw per mini-batch in order
    columns = [torch.cat([p[c] for p in pieces]) for c in range(3)]
    reference_loss = loss(columns[:2], batch.labels)
    reference_loss.backward()
    expected = _grads(model)
    model.zero_grad()

    class FirstTwo(torch.nn.Module):
        def forward(self, embeddings, labels=None, text_ids=None):
            return loss(embeddings[:2], labels)

    torch.manual_seed(123)
    cached = loss_backward(model, FirstTwo(), batch, mini_batch_size=2)
    assert abs(reference_loss.item() - cached.item()) <= 1e-5
    for name, g in _grads(model).items():
        torch.testing.assert_close(g, expected[name], atol=1e-5, rtol=1e-4, msg=name)
    # and dropout really was on: a different seed gives a different loss
    torch.manual_seed(7)
    assert abs(loss_backward(model, FirstTwo(), batch, mini_batch_size=2).item() - cached.item()) > 1e-6


def test_row_chunks_cover_the_batch(bert_dir):
    model = SentenceEncoder.load(bert_dir)
    batch = collate(_data(model), np.arange(len(ROWS)))
    chunks = row_chunks(batch, 4)
    assert [c.num_rows for c in chunks] == [4, 2]
    assert sum(c.packed.num_tokens for c in chunks) == batch.packed.num_tokens
    torch.testing.assert_close(torch.cat([c.labels for c in chunks]), batch.labels)


class ScalerStandIn:
    """What `optimizer_step` uses of an enabled fp16 GradScaler, on CPU: unscale, skip the step on inf/NaN
    gradients and halve the scale then, grow it otherwise."""

    def __init__(self, scale: float = 2.0**4):
        self.scale_value, self.found_inf = scale, False

    def is_enabled(self) -> bool:
        return True

    def scale(self, loss):
        return loss * self.scale_value

    def unscale_(self, optimizer) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        for g in grads:
            g.div_(self.scale_value)
        self.found_inf = not all(torch.isfinite(g).all() for g in grads)

    def step(self, optimizer) -> None:
        if not self.found_inf:
            optimizer.step()

    def update(self) -> None:
        self.scale_value *= 0.5 if self.found_inf else 2.0

    def get_scale(self) -> float:
        return self.scale_value


def _one_parameter_step(scaler, grad: float, skips):
    from kosim.training.step import optimizer_step

    p = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([p], lr=0.1)
    p.grad = torch.full((3,), grad * scaler.get_scale())  # as backward of a scaled loss leaves it
    result = optimizer_step(optimizer, scaler, [p], max_grad_norm=100.0, skips=skips)
    return p.detach(), result


def test_fp16_skips_are_counted_and_end_the_run_when_consecutive():
    from kosim.training.step import SkipCounter

    scaler, skips = ScalerStandIn(), SkipCounter(limit=2)
    weights, result = _one_parameter_step(scaler, 1.0, skips)
    assert not result.refused and torch.allclose(weights, torch.full((3,), 0.9)) and skips.total == 0
    for expected in (1, 2):
        weights, result = _one_parameter_step(scaler, float("inf"), skips)
        assert torch.equal(weights, torch.ones(3)) and not result.refused  # the scaler skipped the step
        assert (skips.total, skips.consecutive) == (expected, expected)
    assert skips.exhausted
    _one_parameter_step(scaler, 1.0, skips)
    assert (skips.total, skips.consecutive, skips.exhausted) == (2, 0, False)


def test_non_finite_gradients_are_refused_without_fp16():
    from kosim.training.step import SkipCounter

    scaler = torch.amp.GradScaler("cuda", enabled=False)
    for bad in (float("nan"), float("inf")):
        weights, result = _one_parameter_step(scaler, bad, SkipCounter(limit=1))
        assert result.refused and not torch.isfinite(result.grad_norm)
        assert torch.equal(weights, torch.ones(3))
