"""CUDA training: fp16 with GradScaler (a skipped step included), bf16 autocast, gradient caching, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from kosim.data import kornli_path, read_kornli_triplets
from kosim.data.collate import collate
from kosim.losses import MultipleNegativesRankingLoss
from kosim.model import SentenceEncoder
from kosim.training import Trainer, TrainingArguments
from kosim.training.step import loss_backward

pytestmark = pytest.mark.cuda


class ScriptedLoss(torch.nn.Module):
    """MNRL whose loss is multiplied by inf on the given calls (so the scaled gradients overflow), or that raises
    on call `fail_at` (to stop a run part-way, like a crash)."""

    def __init__(self, inf_calls=(), fail_at: int | None = None):
        super().__init__()
        self.inner = MultipleNegativesRankingLoss()
        self.inf_calls, self.fail_at, self.calls = set(inf_calls), fail_at, 0

    def forward(self, embeddings, labels=None, text_ids=None):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError(f"scripted failure at call {self.calls}")
        loss = self.inner(embeddings, labels, text_ids=text_ids)
        return loss * float("inf") if self.calls in self.inf_calls else loss

    def config(self):
        return self.inner.config()


def _data():
    return read_kornli_triplets(kornli_path()).head(48)


def _args(out, **kw):
    base = dict(
        output_dir=str(out),
        per_device_train_batch_size=8,
        max_steps=6,
        learning_rate=1e-3,
        warmup_ratio=0.0,
        logging_steps=1,
        save_steps=3,
        seed=11,
        device="cuda",
        disable_tqdm=True,
    )
    base.update(kw)
    return TrainingArguments(**base)


def _weights(model):
    return {n: p.detach().float().cpu().clone() for n, p in model.named_parameters()}


def test_fp16_step_with_grad_scaler_skips_an_overflowing_step(bert_dir, tmp_path):
    model = SentenceEncoder.load(bert_dir)
    trainer = Trainer(model, _args(tmp_path, fp16=True, max_steps=4), _data(), ScriptedLoss(inf_calls={2}))
    trainer.train()
    records = [r for r in trainer.log_history if "loss" in r]
    assert len(records) == 4
    assert records[-1]["skipped_steps"] == 1  # step 2's inf gradients skipped the optimizer step, once
    assert np.isfinite(records[0]["loss"]) and np.isfinite(records[-1]["loss"])
    for name, p in model.named_parameters():
        assert p.dtype == torch.float32 and torch.isfinite(p).all(), name  # master weights stay float32


def test_fp16_skipped_step_leaves_the_weights_alone(bert_dir, tmp_path):
    """One step whose gradients overflow: GradScaler skips it, so the weights equal the initial ones."""
    model = SentenceEncoder.load(bert_dir)
    before = _weights(model)
    Trainer(model, _args(tmp_path, fp16=True, max_steps=1), _data(), ScriptedLoss(inf_calls={1})).train()
    for name, value in _weights(model).items():
        assert torch.equal(value, before[name]), name


def test_bf16_autocast_training_tracks_float32(bert_dir, tmp_path):
    """bf16 autocast: finite, float32 master weights, first-step loss within bf16 rounding of float32's."""
    losses = {}
    for bf16 in (False, True):
        model = SentenceEncoder.load(bert_dir)
        trainer = Trainer(model, _args(tmp_path / str(bf16), bf16=bf16, max_steps=3), _data(), ScriptedLoss())
        trainer.train()
        losses[bf16] = [r["loss"] for r in trainer.log_history if "loss" in r]
        assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(np.isfinite(losses[True]))
    assert losses[True][0] == pytest.approx(losses[False][0], rel=0.03)


def test_grad_cache_equals_plain_on_cuda(bert_dir):
    model = SentenceEncoder.load(bert_dir, device="cuda").eval()  # eval: no dropout, so both must agree
    batch = collate(_data().head(12).tokenize(model.tokenize), np.arange(12)).to("cuda")
    loss = MultipleNegativesRankingLoss()
    plain = loss_backward(model, loss, batch)
    expected = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    cached = loss_backward(model, loss, batch, mini_batch_size=4)
    assert abs(plain.item() - cached.item()) <= 1e-4
    for name, p in model.named_parameters():
        if name in expected:
            torch.testing.assert_close(p.grad, expected[name], atol=1e-4, rtol=1e-3, msg=name)


class FailAfterCheckpoint(ScriptedLoss):
    """Fails in the first step after `checkpoint-3` exists (keyed on the directory, not on a call count, because
    gradient caching runs the loss more than once per step)."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward(self, embeddings, labels=None, text_ids=None):
        if (self.out / "checkpoint-3").is_dir():
            raise RuntimeError("scripted failure after checkpoint-3")
        return super().forward(embeddings, labels, text_ids)


@pytest.mark.parametrize("mini_batch_size", [None, 4])
def test_resume_on_cuda_reaches_the_uninterrupted_weights(bert_dir, tmp_path, mini_batch_size):
    """A run that fails after checkpoint-3 and resumes ends where the uninterrupted run ends (dropout on, so the
    CUDA RNG state must come back too). CUDA's atomic adds make the match approximate, not bitwise."""
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    args = {"mini_batch_size": mini_batch_size}
    Trainer(SentenceEncoder.load(bert_dir), _args(full, **args), _data(), ScriptedLoss()).train()
    with pytest.raises(RuntimeError, match="scripted failure"):
        Trainer(SentenceEncoder.load(bert_dir), _args(crashed, **args), _data(), FailAfterCheckpoint(crashed)).train()
    assert (crashed / "checkpoint-3").is_dir() and not (crashed / "model.safetensors").exists()
    resume = _args(crashed, resume_from_checkpoint=True, **args)
    Trainer(SentenceEncoder.load(bert_dir), resume, _data(), ScriptedLoss()).train()
    expected, resumed = load_file(str(full / "model.safetensors")), load_file(str(crashed / "model.safetensors"))
    for name, tensor in expected.items():
        torch.testing.assert_close(resumed[name], tensor, atol=2e-5, rtol=1e-4, msg=name)
