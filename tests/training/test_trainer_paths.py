"""Trainer paths: gradient accumulation, several datasets with their own losses, max_tokens_per_batch, and a NaN
in an earlier accumulated micro-batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import build_checkpoint

import kosim.training.step as step_module
import kosim.training.trainer as trainer_module
from kosim.data import ColumnDataset
from kosim.losses import CosineSimilarityLoss, MultipleNegativesRankingLoss
from kosim.model import SentenceEncoder
from kosim.training import Trainer, TrainingArguments, TrainingError

TEXTS = {
    "a": [f"문장 {i} 번째 예시" for i in range(16)],
    "b": [f"다른 문장 {i}" + " 길게" * (i % 3) for i in range(16)],
}
SCORED = ColumnDataset(TEXTS, labels=np.linspace(0.0, 1.0, 16))


@pytest.fixture(scope="module")
def no_dropout_dir(tmp_path_factory) -> Path:
    """A tiny BERT without dropout, so differently shaped batches see the same function."""
    return build_checkpoint(
        tmp_path_factory.mktemp("bert-no-dropout"), "bert", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )


def _train(model_dir, out, data, loss, **settings) -> Trainer:
    args = dict(output_dir=str(out), num_train_epochs=1, logging_steps=1, save_steps=1000, seed=5, disable_tqdm=True)
    args.update(settings)
    trainer = Trainer(SentenceEncoder.load(model_dir), TrainingArguments(**args), data, loss)
    trainer.train()
    return trainer


@pytest.fixture
def step_gradients(monkeypatch) -> list[list[torch.Tensor | None]]:
    """The gradients each optimizer step receives (before clipping), recorded in order."""
    real, seen = trainer_module.optimizer_step, []

    def spy(optimizer, scaler, parameters, *args, **kwargs):
        seen.append([None if p.grad is None else p.grad.detach().clone() for p in parameters])
        return real(optimizer, scaler, parameters, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "optimizer_step", spy)
    return seen


def _assert_close_gradients(a, b) -> None:
    assert len(a) == len(b) and a
    for step_a, step_b in zip(a, b):
        for i, (ga, gb) in enumerate(zip(step_a, step_b)):
            if ga is None or gb is None:
                assert ga is None and gb is None, i
                continue
            torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-4, msg=f"parameter {i}")


def test_gradient_accumulation_equals_one_large_batch(no_dropout_dir, tmp_path, step_gradients):
    # the batch sampler's permutation does not depend on the batch size: 2 x 4 rows are the 8 rows of a big batch;
    # a tiny learning rate keeps the weights (so the second step's gradients) the same in both runs
    runs = {}
    for name, batch, accumulation in (("accumulated", 4, 2), ("large", 8, 1)):
        step_gradients.clear()
        trainer = _train(
            no_dropout_dir,
            tmp_path / name,
            SCORED,
            CosineSimilarityLoss(),
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=accumulation,
            learning_rate=1e-12,
        )
        losses = [r["loss"] for r in trainer.log_history if "loss" in r]
        runs[name] = (list(step_gradients), losses)
    assert len(runs["large"][0]) == 2
    _assert_close_gradients(runs["accumulated"][0], runs["large"][0])
    assert runs["accumulated"][1] == pytest.approx(runs["large"][1], rel=1e-5)


def test_max_tokens_per_batch_splits_into_mini_batches_with_the_same_gradients(
    no_dropout_dir, tmp_path, step_gradients, monkeypatch
):
    real_chunks, sizes = step_module.row_chunks, []

    def spy(batch, size):
        sizes.append(size)
        return real_chunks(batch, size)

    monkeypatch.setattr(step_module, "row_chunks", spy)
    runs = {}
    # a limit below one row's tokens: every row becomes its own mini-batch (whatever the tokenizer's vocabulary)
    for name, limit in (("plain", None), ("limited", 1)):
        step_gradients.clear()
        _train(
            no_dropout_dir,
            tmp_path / name,
            SCORED,
            MultipleNegativesRankingLoss(),
            per_device_train_batch_size=8,
            max_tokens_per_batch=limit,
            learning_rate=1e-12,
        )
        runs[name] = list(step_gradients)
        if name == "plain":
            assert sizes == []  # no gradient caching without the limit
    assert sizes == [1, 1], sizes  # two optimizer steps, each over 8 one-row mini-batches
    _assert_close_gradients(runs["limited"], runs["plain"])


class Recording(torch.nn.Module):
    """Wraps a loss and records, in one shared list, which loss saw how many columns and which labels."""

    def __init__(self, name: str, inner: torch.nn.Module, calls: list):
        super().__init__()
        self.name, self.inner, self.calls = name, inner, calls

    def forward(self, embeddings, labels=None, text_ids=None):
        self.calls.append((self.name, len(embeddings), None if labels is None else labels.tolist()))
        return self.inner(embeddings, labels, text_ids=text_ids)

    def config(self):
        return {}


def test_two_datasets_train_with_their_own_losses(bert_dir, tmp_path):
    pair_labels = [round(0.05 * i, 2) for i in range(8)]
    pairs = ColumnDataset({"s1": TEXTS["a"][:8], "s2": TEXTS["b"][:8]}, labels=pair_labels)
    triplets = ColumnDataset({"a": TEXTS["a"][8:], "p": TEXTS["b"][8:], "n": TEXTS["b"][:8]})
    calls: list = []
    losses = {
        "pairs": Recording("cosine", CosineSimilarityLoss(), calls),
        "triplets": Recording("mnrl", MultipleNegativesRankingLoss(), calls),
    }
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_train_epochs=1,
        logging_steps=1,
        multi_dataset_batch_sampler="round_robin",
        disable_tqdm=True,
    )
    trainer = Trainer(SentenceEncoder.load(bert_dir), args, {"pairs": pairs, "triplets": triplets}, losses)
    trainer.train()
    # round_robin: one batch of each dataset in turn, each batch to its own dataset's loss
    assert [(name, columns) for name, columns, _ in calls] == [("cosine", 2), ("mnrl", 3)] * 2
    seen_labels = sorted(x for name, _, labels in calls if name == "cosine" for x in labels)
    assert seen_labels == pytest.approx(pair_labels)  # every pair row once, with its own label
    assert all(labels is None for name, _, labels in calls if name == "mnrl")
    records = [r for r in trainer.log_history if "loss" in r]
    assert [r["step"] for r in records] == [1, 2, 3, 4] and all(np.isfinite(r["loss"]) for r in records)


class NanAtCall(CosineSimilarityLoss):
    def __init__(self, at: int):
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, embeddings, labels=None, text_ids=None):
        self.calls += 1
        loss = super().forward(embeddings, labels)
        return loss * float("nan") if self.calls == self.at else loss


def test_nan_in_an_earlier_micro_batch_refuses_the_step(bert_dir, tmp_path):
    model = SentenceEncoder.load(bert_dir)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=2, gradient_accumulation_steps=2, disable_tqdm=True
    )
    data = ColumnDataset({"a": TEXTS["a"][:8], "b": TEXTS["b"][:8]}, labels=np.linspace(0, 1, 8))
    with pytest.raises(TrainingError, match=r"non-finite loss nan at step 1"):
        Trainer(model, args, data, NanAtCall(1)).train()  # the NaN is in micro-batch 1 of 2
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name  # refused before any weight changed


def test_all_duplicate_rows_under_no_duplicates_is_an_error(no_dropout_dir, tmp_path):
    """40 identical pairs, batch 8, no_duplicates: every batch would hold one row (MNRL loss 0): refused up front."""
    from kosim.data import DataError

    same = ColumnDataset({"a": ["같은 문장"] * 40, "b": ["같은 답"] * 40})
    with pytest.raises(DataError, match="no_duplicates|batch"):
        _train(
            no_dropout_dir,
            tmp_path / "dup",
            same,
            MultipleNegativesRankingLoss(),
            per_device_train_batch_size=8,
            batch_sampler="no_duplicates",
        )
    assert not (tmp_path / "dup" / "model.safetensors").exists()


def test_group_by_label_batches_train_a_batch_hard_triplet_loss(no_dropout_dir, tmp_path):
    """batch_sampler="group_by_label" feeds a batch-hard triplet loss label-grouped batches through the Trainer."""
    from kosim.losses import BatchHardTripletLoss

    texts = [f"분류 {i % 4} 문장 {i}" for i in range(32)]
    data = ColumnDataset({"sentence": texts}, labels=np.array([i % 4 for i in range(32)], dtype=np.float32))
    trainer = _train(
        no_dropout_dir,
        tmp_path / "bh",
        data,
        BatchHardTripletLoss(),
        per_device_train_batch_size=8,
        batch_sampler="group_by_label",
    )
    losses = [r["loss"] for r in trainer.log_history if "loss" in r]
    assert len(losses) == 4 and all(np.isfinite(losses))


def test_raw_korsts_scores_with_cosine_similarity_loss_warn(no_dropout_dir, tmp_path):
    """KorSTS's raw 0-5 scores given to CosineSimilarityLoss (a cosine target in [-1, 1]) warn with the range."""
    from kosim.data import korsts_path

    raw = ColumnDataset.from_tsv(korsts_path("dev"), columns=["sentence1", "sentence2"], label="score").head(16)
    assert float(np.max(raw.labels)) > 1.0
    with pytest.warns(UserWarning, match=r"labels range over \[.*\] but CosineSimilarityLoss expects .*scale them"):
        _train(
            no_dropout_dir, tmp_path / "raw", raw, CosineSimilarityLoss(), per_device_train_batch_size=8, max_steps=1
        )
