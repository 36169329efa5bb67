"""The Trainer with losses that need more than embeddings: GISTEmbedLoss's guide model (a table of the guide's
embeddings built at set-up) and SoftmaxLoss's classifier head (optimized, checkpointed, saved)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import KOREAN, NO_DROPOUT, build_checkpoint, first_logged_loss, short_run_args

from kosim.data import ColumnDataset
from kosim.losses import GISTEmbedLoss, MatryoshkaLoss, SoftmaxLoss
from kosim.losses.softmax import HEAD_FILE
from kosim.model import SentenceEncoder
from kosim.training import Trainer, TrainingArguments

KO = [t for t in KOREAN if not t.isascii()]  # the words the tiny tokenizer was trained on
N = 8
TRAIN = ColumnDataset(
    {"a": [KO[i % 7] + " " + KO[(3 * i) % 7] for i in range(N)], "b": [KO[(i + 2) % 7] for i in range(N)]}
)
EVAL = ColumnDataset({"a": [KO[(i + 1) % 7] for i in range(6)], "b": [KO[(5 * i) % 7] + " " + KO[i] for i in range(6)]})


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("student"), "bert", seed=0, **NO_DROPOUT)


@pytest.fixture(scope="module")
def guide_dir(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("guide"), "bert", seed=1, hidden_size=16, intermediate_size=32)


def _args(out, **settings) -> TrainingArguments:
    return short_run_args(out, N, **settings)


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    expected = b.state_dict()
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


# ---------------------------------------------------------------------------------------------------------- GIST
def _gist_by_hand(student: SentenceEncoder, guide: SentenceEncoder, data: ColumnDataset) -> float:
    """The GIST loss of the whole dataset as one batch: each column encoded by the student and by the guide."""
    columns = [student.encode(data.column(c), to="torch") for c in data.column_names]
    guides = [guide.encode(data.column(c), to="torch") for c in data.column_names]
    return GISTEmbedLoss()(columns, guide_embeddings=guides).item()


@pytest.mark.parametrize("mini_batch_size", [None, 3])
def test_gist_step_one_loss_equals_the_loss_by_hand(student_dir, guide_dir, tmp_path, mini_batch_size):
    guide = SentenceEncoder.load(guide_dir)
    trainer = Trainer(
        SentenceEncoder.load(student_dir),
        _args(tmp_path, mini_batch_size=mini_batch_size),
        TRAIN,
        GISTEmbedLoss(),
        guide=guide,
        guide_source="tiny-guide",
    )
    trainer.train()
    expected = _gist_by_hand(SentenceEncoder.load(student_dir), guide, TRAIN)
    # one batch of every row (the sampler's order does not change a mean over anchors); the training forward and
    # encode's inference path agree to ~1e-7 in the embeddings, times the 1 / temperature = 100 of the logits
    assert first_logged_loss(tmp_path) == pytest.approx(expected, rel=1e-4)
    weights = SentenceEncoder.load(tmp_path).state_dict()
    assert any(not torch.equal(w, weights[n]) for n, w in SentenceEncoder.load(student_dir).state_dict().items())
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "GISTEmbedLoss" in card and "tiny-guide" in card


def test_gist_validation_loss_uses_a_table_of_the_eval_texts(student_dir, guide_dir, tmp_path):
    guide = SentenceEncoder.load(guide_dir)
    trainer = Trainer(
        SentenceEncoder.load(student_dir), _args(tmp_path), TRAIN, GISTEmbedLoss(), eval_dataset=EVAL, guide=guide
    )
    got = trainer.validation_loss()["validation_loss"]
    assert got == pytest.approx(_gist_by_hand(SentenceEncoder.load(student_dir), guide, EVAL), rel=1e-4)


def test_gist_inside_matryoshka_trains(student_dir, guide_dir, tmp_path):
    loss = MatryoshkaLoss(GISTEmbedLoss(), dims=[32, 16])
    Trainer(
        SentenceEncoder.load(student_dir), _args(tmp_path), TRAIN, loss, guide=SentenceEncoder.load(guide_dir)
    ).train()
    assert isinstance(loss.loss, GISTEmbedLoss)  # the user's loss stack is left as it was
    assert np.isfinite(first_logged_loss(tmp_path))


def test_gist_without_a_guide_is_refused_when_the_trainer_is_built(student_dir, guide_dir, tmp_path):
    model = SentenceEncoder.load(student_dir)
    with pytest.raises(ValueError, match=r"\['train'\]: GISTEmbedLoss needs a guide model"):
        Trainer(model, _args(tmp_path), TRAIN, GISTEmbedLoss())
    with pytest.raises(ValueError, match="no training loss takes one"):
        Trainer(model, _args(tmp_path), TRAIN, SoftmaxLoss(32, 3), guide=SentenceEncoder.load(guide_dir))
    assert not (tmp_path / "run_config.json").exists()


class SignalGIST(GISTEmbedLoss):
    """GISTEmbedLoss that sends this process SIGTERM during its `at`-th call (the Trainer checkpoints and stops)."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().forward(*args, **kwargs)


def test_gist_resume_after_a_kill_gives_the_uninterrupted_weights(bert_dir, guide_dir, tmp_path):
    settings = dict(per_device_train_batch_size=4, max_steps=-1, num_train_epochs=2, save_steps=2, mini_batch_size=2)
    guide = SentenceEncoder.load(guide_dir)

    def run(out, loss, **extra):
        trainer = Trainer(SentenceEncoder.load(bert_dir), _args(out, **settings, **extra), TRAIN, loss, guide=guide)
        trainer.train()
        return trainer

    full = run(tmp_path / "full", GISTEmbedLoss())
    with pytest.raises(SystemExit):
        run(tmp_path / "run", SignalGIST(3))
    resumed = run(tmp_path / "run", GISTEmbedLoss(), resume_from_checkpoint=True)
    _assert_same_weights(resumed.model, full.model)


# ---------------------------------------------------------------------------------------------------------- SoftmaxLoss
PAIRS = ColumnDataset({c: TRAIN.column(c) for c in TRAIN.column_names}, labels=[0, 1, 2, 0, 1, 2, 2, 0])


def _softmax_loss(seed: int = 0) -> SoftmaxLoss:
    torch.manual_seed(seed)
    return SoftmaxLoss(32, 3)


def test_softmax_step_equals_sentence_transformers(student_dir, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer import losses as st_losses

    from kosim.nn.loading import to_hf_state_dict

    loss = _softmax_loss()
    head = {k: v.clone() for k, v in loss.classifier.state_dict().items()}
    settings = dict(weight_decay=0.01, max_grad_norm=1e9, lr_scheduler_type="constant", learning_rate=1e-3)
    trainer = Trainer(SentenceEncoder.load(student_dir), _args(tmp_path, **settings), PAIRS, loss)
    trainer.train()

    model = st.SentenceTransformer(str(student_dir), device="cpu")
    st_loss = st_losses.SoftmaxLoss(model, embedding_dimension=32, num_labels=3)
    st_loss.classifier.load_state_dict(head)
    no_decay = [p for n, p in st_loss.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in st_loss.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-3
    )
    features = [model.tokenize(PAIRS.column(c)) for c in PAIRS.column_names]
    st_value = st_loss(features, torch.tensor(PAIRS.labels, dtype=torch.long))
    st_value.backward()
    optimizer.step()

    assert first_logged_loss(tmp_path) == pytest.approx(st_value.item(), abs=1e-6)
    # AdamW's first step moves a weight by lr * g / (|g| + eps) (+ decay): where |g| is far above eps=1e-8 it is
    # +-lr whatever the rounding of g; the few weights with |g| near eps move by an amount that rounding of g at
    # the 1e-7 level changes by < lr * 1e-7 / 1e-8 at most; we allow lr / 100 and require the mean far below it
    ours = to_hf_state_dict(trainer.model.encoder)
    theirs = model[0].auto_model.state_dict()
    diffs = torch.cat([(ours[n].float() - theirs[n].float()).abs().flatten() for n in ours if n in theirs])
    assert diffs.max() < 1e-5 and diffs.mean() < 1e-7, (diffs.max(), diffs.mean())
    for name in ("weight", "bias"):
        torch.testing.assert_close(getattr(loss.classifier, name), getattr(st_loss.classifier, name), atol=1e-6, rtol=0)
        assert not torch.equal(getattr(loss.classifier, name), head[name])  # the head trained
    saved = _softmax_loss(seed=9)
    saved.load_head(tmp_path)  # saved beside the final model
    torch.testing.assert_close(saved.classifier.weight, loss.classifier.weight, atol=0, rtol=0)
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert HEAD_FILE in card and "SoftmaxLoss" in card


def test_softmax_head_weight_decays_and_its_bias_does_not(student_dir, tmp_path):
    loss = _softmax_loss()
    trainer = Trainer(SentenceEncoder.load(student_dir), _args(tmp_path, weight_decay=0.1), PAIRS, loss)
    state = trainer._setup()  # the optimizer the set-up builds
    decay, no_decay = (group["params"] for group in state.optimizer.param_groups)
    assert any(p is loss.classifier.weight for p in decay) and not any(p is loss.classifier.weight for p in no_decay)
    assert any(p is loss.classifier.bias for p in no_decay) and not any(p is loss.classifier.bias for p in decay)
    assert state.optimizer.param_groups[0]["weight_decay"] == 0.1


class SignalSoftmax(SoftmaxLoss):
    """SoftmaxLoss that sends this process SIGTERM during its `at`-th call."""

    def __init__(self, at: int):
        torch.manual_seed(0)
        super().__init__(32, 3)
        self.at, self.calls = at, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().forward(*args, **kwargs)


def test_softmax_resume_restores_the_head_exactly(bert_dir, tmp_path):
    settings = dict(per_device_train_batch_size=4, max_steps=-1, num_train_epochs=2, save_steps=2)

    def run(out, loss, **extra):
        trainer = Trainer(SentenceEncoder.load(bert_dir), _args(out, **settings, **extra), PAIRS, loss)
        trainer.train()
        return trainer

    full_loss = _softmax_loss()
    full = run(tmp_path / "full", full_loss)
    with pytest.raises(SystemExit):
        run(tmp_path / "run", SignalSoftmax(3))
    resumed_loss = _softmax_loss(seed=7)  # another random head: the checkpoint's must replace it
    resumed = run(tmp_path / "run", resumed_loss, resume_from_checkpoint=True)
    _assert_same_weights(resumed.model, full.model)
    _assert_same_weights(resumed_loss, full_loss)
