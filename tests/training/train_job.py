"""A small training run in its own process, for the kill / signal / resume tests.

usage: python train_job.py MODEL_DIR OUTPUT_DIR SECONDS_PER_STEP RESUME(0|1) [FAULT STEP] [KEY=VALUE ...]

FAULT (optional) injects a fault: ``kill`` SIGKILLs the process during the write of checkpoint-STEP, once the
trainer state is on disk but before the manifest is written (mid-write); ``enospc`` makes that write fail with "No
space left on device"; ``kill-after`` SIGKILLs it as soon as checkpoint-STEP is complete; ``kill-final`` SIGKILLs
it during the final model save, once the weights file is written (STEP is ignored).
KEY=VALUE pairs override TrainingArguments (ints, floats and strings).
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
from pathlib import Path

import torch

from kosim.data import kornli_path, read_kornli_triplets
from kosim.losses import MultipleNegativesRankingLoss
from kosim.model import SentenceEncoder
from kosim.training import Trainer, TrainingArguments


class SlowLoss(torch.nn.Module):
    """MNRL that takes a while, so that a test can interrupt the run between checkpoints."""

    def __init__(self, seconds: float):
        super().__init__()
        self.inner = MultipleNegativesRankingLoss()
        self.seconds = seconds

    def forward(self, embeddings, labels=None, text_ids=None):
        time.sleep(self.seconds)
        return self.inner(embeddings, labels, text_ids=text_ids)

    def config(self):
        return self.inner.config()


def _kill_after(step: int) -> None:
    real_replace = os.replace

    def replace_then_die(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if Path(dst).name == f"checkpoint-{step}":
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace_then_die


def _kill_in_final_save(output_dir: str) -> None:
    import safetensors.torch

    real_save_file = safetensors.torch.save_file

    def save_then_die(tensors, filename, *args, **kwargs):
        real_save_file(tensors, filename, *args, **kwargs)
        if Path(filename).parent.resolve() == Path(output_dir).resolve():
            os.kill(os.getpid(), signal.SIGKILL)

    safetensors.torch.save_file = save_then_die


def inject_fault(kind: str, step: int, output_dir: str) -> None:
    """Patch torch.save so that the write of checkpoint-`step` dies (`kill`) or hits a full disk (`enospc`);
    or kill the process after that checkpoint (`kill-after`) or during the final save (`kill-final`)."""
    if kind == "kill-after":
        return _kill_after(step)
    if kind == "kill-final":
        return _kill_in_final_save(output_dir)
    real_save = torch.save

    def faulty_save(obj, f, *args, **kwargs):
        if Path(f).parent.name.startswith(f".tmp-checkpoint-{step}-"):
            if kind == "enospc":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(f))
            real_save(obj, f, *args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, f, *args, **kwargs)

    torch.save = faulty_save


def main() -> None:
    model_dir, output_dir, seconds, resume = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"
    overrides = dict(a.split("=", 1) for a in sys.argv[5:] if "=" in a)
    fault = [a for a in sys.argv[5:] if "=" not in a]
    if fault:
        inject_fault(fault[0], int(fault[1]), output_dir)
    torch.set_num_threads(1)
    model = SentenceEncoder.load(model_dir)  # dropout stays on: resume must replay the RNG exactly
    data = read_kornli_triplets(kornli_path()).head(64)
    settings = dict(
        output_dir=output_dir,
        per_device_train_batch_size=8,
        num_train_epochs=2,
        learning_rate=1e-3,
        warmup_ratio=0.1,
        logging_steps=2,
        save_steps=3,
        save_total_limit=2,
        batch_sampler="no_duplicates",
        seed=7,
        resume_from_checkpoint=True if resume else None,
        disable_tqdm=True,
    )
    for key, value in overrides.items():
        settings[key] = int(value) if value.lstrip("-").isdigit() else _number_or_text(value)
    Trainer(model, TrainingArguments(**settings), data, SlowLoss(seconds)).train()


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


if __name__ == "__main__":
    main()
