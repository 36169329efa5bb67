"""Resume and reliability of the Trainer, in-process: a finished run resumed, refused non-finite steps, corrupted
checkpoints, the output directory spelled differently, a stop signal, and checks made before anything is written."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from kosim.data import ColumnDataset
from kosim.losses import CosineSimilarityLoss, MultipleNegativesRankingLoss
from kosim.model import SentenceEncoder
from kosim.nn.loading import CheckpointError
from kosim.training import CheckpointCorruptError, Trainer, TrainingArguments, TrainingError
from kosim.training.checkpoint import load_checkpoint

PAIRS = ColumnDataset({"a": [f"문장 {i}" for i in range(16)], "b": [f"다른 문장 {i}" for i in range(16)]})


def _train(model_dir: Path, out, loss=None, data=PAIRS, **settings) -> Trainer:
    """Train a fresh copy of the model (4 batches of 4 rows per epoch by default)."""
    args = dict(
        output_dir=str(out),
        per_device_train_batch_size=4,
        num_train_epochs=1,
        learning_rate=1e-3,
        logging_steps=1,
        save_steps=1000,
        seed=3,
        disable_tqdm=True,
    )
    args.update(settings)
    trainer = Trainer(
        SentenceEncoder.load(model_dir), TrainingArguments(**args), data, loss or MultipleNegativesRankingLoss()
    )
    trainer.train()
    return trainer


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    expected = b.state_dict()
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _logged_steps(out: Path) -> list[int]:
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return [r["step"] for r in records if "loss" in r]


# ---------------------------------------------------------------------------------------------- a finished run
def test_resuming_a_finished_run_trains_no_extra_step(bert_dir, tmp_path):
    # the run ends mid-epoch on a checkpoint; a constant learning rate makes an extra step change the weights
    settings = dict(max_steps=3, save_steps=3, lr_scheduler_type="constant_with_warmup", warmup_steps=1)
    full = _train(bert_dir, tmp_path / "full", **settings)
    out = tmp_path / "run"
    _train(bert_dir, out, **settings)
    for name in ("model.safetensors", "modules.json"):  # as if killed during the final save
        (out / name).unlink()
    resumed = _train(bert_dir, out, resume_from_checkpoint=True, **settings)
    _assert_same_weights(resumed.model, full.model)
    assert _logged_steps(out) == [1, 2, 3]
    _assert_same_weights(SentenceEncoder.load(out), full.model)  # the final model was written


# ---------------------------------------------------------------------------------------------- non-finite steps
class NanGradientFrom(MultipleNegativesRankingLoss):
    """MNRL plus a term whose value is 0 but whose gradient is NaN (sqrt at 0), from the `start`-th call on."""

    def __init__(self, start: int):
        super().__init__()
        self.start, self.calls = start, 0

    def forward(self, embeddings, labels=None, text_ids=None):
        self.calls += 1
        loss = super().forward(embeddings, labels, text_ids=text_ids)
        if self.calls >= self.start:
            e = embeddings[0]
            loss = loss + (e - e.detach()).abs().sqrt().sum()
        return loss


def test_nan_gradient_with_a_finite_loss_is_refused_and_never_checkpointed(bert_dir, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"non-finite gradient norm nan at step 3.*checkpoint-2") as caught:
        _train(bert_dir, out, loss=NanGradientFrom(3), max_steps=4, save_steps=1)
    assert "no weight changed" in str(caught.value)
    assert not (out / "checkpoint-3").exists()
    weights, _ = load_checkpoint(out / "checkpoint-2")
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_weights_that_overflow_are_never_saved(bert_dir, tmp_path, monkeypatch):
    import kosim.training.trainer as trainer_module

    real_step, steps = trainer_module.optimizer_step, []

    def overflowing_step(optimizer, scaler, parameters, *args, **kwargs):
        result = real_step(optimizer, scaler, parameters, *args, **kwargs)
        steps.append(1)
        if len(steps) == 2:  # as a huge learning rate would: finite gradients, a weight that overflows
            with torch.no_grad():
                parameters[0].view(-1)[0] = float("inf")
        return result

    monkeypatch.setattr(trainer_module, "optimizer_step", overflowing_step)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"not finite after step 2, so checkpoint-2 is not saved.*checkpoint-1"):
        _train(bert_dir, out, max_steps=4, save_steps=1)
    assert not (out / "checkpoint-2").exists() and (out / "checkpoint-1").is_dir()


# ---------------------------------------------------------------------------------------------- corrupted checkpoints
def test_resume_falls_back_to_the_newest_checkpoint_that_verifies(bert_dir, tmp_path, capsys):
    settings = dict(max_steps=4, save_steps=1)
    full = _train(bert_dir, tmp_path / "full", **settings)
    out = tmp_path / "run"
    _train(bert_dir, out, **settings)
    _flip_byte(out / "checkpoint-4" / "model.safetensors")
    _flip_byte(out / "checkpoint-3" / "trainer_state.pt")
    capsys.readouterr()
    resumed = _train(bert_dir, out, resume_from_checkpoint=True, **settings)
    err = capsys.readouterr().err
    assert "cannot resume from checkpoint-4" in err and "model.safetensors: contents do not match" in err, err
    assert "cannot resume from checkpoint-3" in err and "trainer_state.pt: contents do not match" in err, err
    assert f"resuming from {out / 'checkpoint-2'}, the newest checkpoint that verifies" in err, err
    _assert_same_weights(resumed.model, full.model)


def test_resume_refuses_when_no_checkpoint_verifies(bert_dir, tmp_path):
    out = tmp_path / "run"
    _train(bert_dir, out, max_steps=2, save_steps=1)
    for step in (1, 2):
        _flip_byte(out / f"checkpoint-{step}" / "trainer_state.pt")
    with pytest.raises(CheckpointCorruptError, match=r"checkpoint-2/trainer_state.pt: contents do not match") as caught:
        _train(bert_dir, out, max_steps=2, save_steps=1, resume_from_checkpoint=True)
    assert isinstance(caught.value, CheckpointError)  # a user error: the CLI exits 2 with the message


def test_half_written_checkpoints_are_removed(bert_dir, tmp_path):
    stale = tmp_path / ".tmp-checkpoint-7-0badc0de"
    stale.mkdir()
    (stale / "trainer_state.pt").write_bytes(b"half")
    _train(bert_dir, tmp_path, max_steps=1)
    assert not stale.exists()


CLI_CONFIG = """\
[model]
name_or_path = "{model}"
max_seq_length = 32

[[datasets]]
name = "sts"
path = "kosim:KorSTS/sts-train.tsv"
format = "korsts"
max_rows = 16
loss = "CosineSimilarityLoss"

[training]
output_dir = "{output}"
per_device_train_batch_size = 8
num_train_epochs = 1
save_steps = 1
disable_tqdm = true
"""


def test_cli_reports_a_corrupted_checkpoint_as_a_user_error(bert_dir, tmp_path, capsys):
    from kosim.cli.main import main

    config = tmp_path / "run.toml"
    config.write_text(CLI_CONFIG.format(model=bert_dir, output=tmp_path / "out"), encoding="utf-8")
    assert main(["train", str(config)]) == 0
    for step in (1, 2):
        _flip_byte(tmp_path / "out" / f"checkpoint-{step}" / "trainer_state.pt")
    capsys.readouterr()
    assert main(["train", str(config), "--override", "training.resume_from_checkpoint=true"]) == 2
    err = capsys.readouterr().err
    assert "kosim train: error:" in err and "checkpoint-2/trainer_state.pt: contents do not match" in err, err


# ---------------------------------------------------------------------------------------------- output directory
class SignalAt(MultipleNegativesRankingLoss):
    """MNRL that sends this process SIGTERM during its `at`-th call (the Trainer then checkpoints and stops)."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, embeddings, labels=None, text_ids=None):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().forward(embeddings, labels, text_ids=text_ids)


@pytest.mark.parametrize("spelling", ["absolute", "moved"])
def test_the_same_output_dir_spelled_differently_resumes(bert_dir, tmp_path, monkeypatch, capsys, spelling):
    settings = dict(num_train_epochs=2, save_steps=2)
    full = _train(bert_dir, tmp_path / "full", **settings)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        _train(bert_dir, "run", loss=SignalAt(3), **settings)
    assert stopped.value.code == 128 + signal.SIGTERM
    printed = capsys.readouterr()
    assert f"signal {signal.SIGTERM.value} received; checkpoint saved to run/checkpoint-3" in printed.err
    assert "signal" not in printed.out  # stdout is the CLI's JSON line only
    target = tmp_path / "run"
    if spelling == "moved":
        target = shutil.move(tmp_path / "run", tmp_path / "elsewhere")
    resumed = _train(bert_dir, str(target), resume_from_checkpoint=True, **settings)
    _assert_same_weights(resumed.model, full.model)


# ---------------------------------------------------------------------------------------------- checks before writing
@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 trains on CUDA")
def test_fp16_without_cuda_is_refused_before_anything_is_written(bert_dir, tmp_path):
    with pytest.raises((TrainingError, ValueError), match="fp16"):
        _train(bert_dir, tmp_path, max_steps=1, fp16=True)
    assert not (tmp_path / "run_config.json").exists()
    _train(bert_dir, tmp_path, max_steps=1)  # the corrected rerun into the same directory is not "a different run"


class BoundedCosine(CosineSimilarityLoss):
    label_range = (-1.0, 1.0)


def test_labels_outside_the_loss_range_warn(bert_dir, tmp_path, recwarn):
    texts = {"a": [f"문장 {i}" for i in range(8)], "b": [f"다른 문장 {i}" for i in range(8)]}
    raw = ColumnDataset(texts, labels=np.linspace(0.0, 5.0, 8))
    with pytest.warns(UserWarning, match=r"labels range over \[0, 5\].*\[-1, 1\]; scale them to \[0, 1\]"):
        _train(bert_dir, tmp_path / "raw", loss=BoundedCosine(), data=raw, max_steps=1)
    recwarn.clear()
    _train(bert_dir, tmp_path / "scaled", loss=BoundedCosine(), data=ColumnDataset(texts, labels=np.linspace(0, 1, 8)))
    assert not [w for w in recwarn if "labels range" in str(w.message)]
