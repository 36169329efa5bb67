"""Trainer: schedule, exact resume after SIGKILL and SIGTERM, checkpoint integrity, clear failures."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kosim.data import ColumnDataset
from kosim.losses import CosineSimilarityLoss, MultipleNegativesRankingLoss
from kosim.model import SentenceEncoder
from kosim.training import Trainer, TrainingArguments, TrainingError
from kosim.training.schedule import lr_factor

JOB = Path(__file__).with_name("train_job.py")


def _run_job(model_dir, out, seconds=0.0, resume=False, wait=True, fault=()):
    cmd = [sys.executable, str(JOB), str(model_dir), str(out), str(seconds), "1" if resume else "0", *fault]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if wait:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
    return proc


def _wait_for(path: Path, proc, timeout=120.0) -> None:
    start = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() - start < timeout, f"{path} never appeared"
        time.sleep(0.02)


def _final_weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(bert_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    _run_job(bert_dir, out)
    return _final_weights(out)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_interrupted_run_resumes_to_identical_weights(bert_dir, tmp_path, uninterrupted, sig):
    out = tmp_path / "run"
    proc = _run_job(bert_dir, out, seconds=0.15, wait=False)
    _wait_for(out / "checkpoint-6", proc)
    proc.send_signal(sig)
    proc.wait(timeout=120)
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM  # it saved a checkpoint and stopped
    assert not (out / "model.safetensors").exists(), "the run finished before it was interrupted"
    _run_job(bert_dir, out, resume=True)
    resumed = _final_weights(out)
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), name


def test_kill_before_the_first_checkpoint_resumes_from_the_start(bert_dir, tmp_path, uninterrupted):
    out = tmp_path / "run"
    proc = _run_job(bert_dir, out, seconds=0.15, wait=False)
    _wait_for(out / "train_log.jsonl", proc)  # step 2 is logged; the first checkpoint is step 3
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=120)
    assert not list(out.glob("checkpoint-*")), "the first checkpoint was written before the kill"
    _run_job(bert_dir, out, resume=True)
    resumed = _final_weights(out)
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), name
    steps = [json.loads(line).get("step") for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # no step logged twice


def test_kill_during_a_checkpoint_write_leaves_a_resumable_run(bert_dir, tmp_path, uninterrupted):
    out = tmp_path / "run"
    proc = _run_job(bert_dir, out, wait=False, fault=("kill", "6"))
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, output
    assert [p.name for p in out.glob(".tmp-checkpoint-6-*")], "the kill did not land inside the write"
    assert not (out / "checkpoint-6").exists() and (out / "checkpoint-3").is_dir()
    _run_job(bert_dir, out, resume=True)  # resumes from checkpoint-3, ignoring the half-written directory
    resumed = _final_weights(out)
    for name, tensor in uninterrupted.items():
        assert torch.equal(resumed[name], tensor), name


# The run ends on a checkpoint in the middle of its second epoch; with a constant learning rate an extra step after
# resuming would change the weights.
ENDS_ON_A_CHECKPOINT = ("max_steps=12", "save_steps=4", "lr_scheduler_type=constant_with_warmup")


@pytest.fixture(scope="module")
def uninterrupted_to_a_checkpoint(bert_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("full-constant")
    _run_job(bert_dir, out, fault=ENDS_ON_A_CHECKPOINT)
    return out


def _logged_steps(out: Path) -> list[int]:
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return [r["step"] for r in records if "loss" in r]


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["kill-after", "kill-final"])  # after the last save; during the final save
def test_kill_after_the_last_checkpoint_resumes_without_training(
    bert_dir, tmp_path, uninterrupted_to_a_checkpoint, moment
):
    out = tmp_path / "run"
    proc = _run_job(bert_dir, out, wait=False, fault=(moment, "12", *ENDS_ON_A_CHECKPOINT))
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, output
    assert (out / "checkpoint-12").is_dir() and not (out / "modules.json").exists()
    _run_job(bert_dir, out, resume=True, fault=ENDS_ON_A_CHECKPOINT)
    resumed, reference = _final_weights(out), _final_weights(uninterrupted_to_a_checkpoint)
    for name, tensor in reference.items():
        assert torch.equal(resumed[name], tensor), name
    assert _logged_steps(out) == _logged_steps(uninterrupted_to_a_checkpoint)  # no step 13
    assert (out / "modules.json").is_file()


def test_disk_full_while_saving_keeps_the_previous_checkpoint(bert_dir, tmp_path):
    from kosim.training.checkpoint import verify_checkpoint

    out = tmp_path / "run"
    proc = _run_job(bert_dir, out, wait=False, fault=("enospc", "6"))
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "No space left on device" in output, output
    assert not list(out.glob(".tmp-checkpoint-*")) and not (out / "checkpoint-6").exists()
    verify_checkpoint(out / "checkpoint-3")  # the last good checkpoint is whole


@pytest.mark.parametrize("target", ["model.safetensors", "trainer_state.pt"])
def test_corrupted_checkpoint_is_reported(bert_dir, tmp_path, target):
    out = tmp_path / "run"
    proc = _run_job(bert_dir, out, seconds=0.15, wait=False)
    _wait_for(out / "checkpoint-3", proc)
    proc.kill()
    proc.wait()
    latest = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
    path = latest / target
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, different contents
    path.write_bytes(bytes(data))
    proc = _run_job(bert_dir, out, resume=True, wait=False)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert "CheckpointCorruptError" in output and f"{target}: contents do not match" in output, output


def test_learning_rate_follows_linear_warmup(bert_dir, tmp_path):
    from transformers import get_linear_schedule_with_warmup

    model = SentenceEncoder.load(bert_dir)
    data = ColumnDataset({"a": [f"문장 {i}" for i in range(40)], "b": [f"다른 문장 {i}" for i in range(40)]})
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_train_epochs=1,
        warmup_ratio=0.2,
        learning_rate=1e-3,
        logging_steps=1,
        save_steps=1000,
        disable_tqdm=True,
    )
    trainer = Trainer(model, args, data, MultipleNegativesRankingLoss())
    trainer.train()
    lrs = [r["learning_rate"] for r in trainer.log_history if "loss" in r]
    assert len(lrs) == 10
    reference = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    schedule = get_linear_schedule_with_warmup(reference, num_warmup_steps=2, num_training_steps=10)
    for step, lr in enumerate(lrs, start=1):
        reference.step()
        schedule.step()
        assert lr == pytest.approx(reference.param_groups[0]["lr"], abs=1e-12)
        assert lr == pytest.approx(1e-3 * lr_factor(step, 10, 2), abs=1e-12)


def test_non_finite_loss_stops_with_step(bert_dir, tmp_path):
    model = SentenceEncoder.load(bert_dir)
    data = ColumnDataset({"a": ["가", "나", "다", "라"], "b": ["마", "바", "사", "아"]}, labels=[0.1, 0.2, 0.3, 0.4])

    class Exploding(CosineSimilarityLoss):
        def forward(self, embeddings, labels=None, text_ids=None):
            return super().forward(embeddings, labels) * float("nan")

    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=2, disable_tqdm=True)
    with pytest.raises(TrainingError, match=r"non-finite loss nan at step 1"):
        Trainer(model, args, data, Exploding()).train()


def test_output_dir_of_a_different_run_is_refused(bert_dir, tmp_path):
    data = ColumnDataset({"a": ["가", "나", "다", "라"], "b": ["마", "바", "사", "아"]})
    common = dict(output_dir=str(tmp_path), per_device_train_batch_size=2, num_train_epochs=1, disable_tqdm=True)
    Trainer(SentenceEncoder.load(bert_dir), TrainingArguments(**common), data, MultipleNegativesRankingLoss()).train()
    other = TrainingArguments(**common, learning_rate=1e-3)
    with pytest.raises(TrainingError, match="holds a different run.*learning_rate"):
        Trainer(SentenceEncoder.load(bert_dir), other, data, MultipleNegativesRankingLoss()).train()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("per_device_train_batch_size", 0),
        ("learning_rate", -1.0),
        ("warmup_ratio", 1.5),
        ("batch_sampler", "nope"),
        ("multi_dataset_batch_sampler", "random"),
        ("max_steps", 0),
        ("lr_scheduler_type", "cosine_wobble"),
    ],
)
def test_invalid_arguments_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"TrainingArguments.{field}"):
        TrainingArguments(**{field: value})


def test_unknown_argument_gets_a_suggestion():
    with pytest.raises(ValueError, match="did you mean 'learning_rate'"):
        TrainingArguments.from_dict({"learning_rat": 1e-4})


def test_bf16_auto_follows_the_device(monkeypatch):
    import kosim.precision as precision
    from kosim.training.arguments import TrainingArguments

    assert TrainingArguments(bf16="auto").bf16 == "auto"
    with pytest.raises(ValueError, match="bf16"):
        TrainingArguments(bf16="yes")
    with pytest.raises(ValueError, match="fp16"):
        TrainingArguments(bf16="auto", fp16=True)
    monkeypatch.setattr(precision, "_cpu_has_native_bf16", lambda: False)
    assert precision.resolve_bf16("auto", "cpu") is False
    assert precision.resolve_bf16(True, "cpu") is True
    monkeypatch.setattr(precision, "_cpu_has_native_bf16", lambda: True)
    assert precision.resolve_bf16("auto", "cpu") is True
    assert precision.resolve_bf16(False, "cpu") is False
