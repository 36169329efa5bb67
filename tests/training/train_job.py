"""A small training run in its own process, for the kill / signal / resume tests.

usage: python train_job.py MODEL_DIR OUTPUT_DIR SECONDS_PER_STEP RESUME(0|1) [FAULT STEP]

FAULT (optional) injects a fault into the write of checkpoint-STEP: ``kill`` SIGKILLs the process once the trainer
state is on disk but before the manifest is written (mid-write); ``enospc`` makes that write fail with "No space
left on device".
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


def inject_fault(kind: str, step: int) -> None:
    """Patch torch.save so that the write of checkpoint-`step` dies (`kill`) or hits a full disk (`enospc`)."""
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
    if len(sys.argv) > 5:
        inject_fault(sys.argv[5], int(sys.argv[6]))
    torch.set_num_threads(1)
    model = SentenceEncoder.load(model_dir)  # dropout stays on: resume must replay the RNG exactly
    data = read_kornli_triplets(kornli_path()).head(64)
    args = TrainingArguments(
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
    Trainer(model, args, data, SlowLoss(seconds)).train()


if __name__ == "__main__":
    main()
