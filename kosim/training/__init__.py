"""kosim.training: TrainingArguments, the Trainer loop, the training step, checkpoints.

arguments (TrainingArguments) -> state (set-up: TrainState) -> trainer (the loop) -> step (loss_backward,
optimizer_step) -> stats (the log window) -> checkpoint (save, verify, resume) ; signals, schedule, distributed
"""

from __future__ import annotations

from kosim.config.arguments import TrainingArguments
from kosim.training.checkpoint import CheckpointCorruptError, latest_checkpoint
from kosim.training.step import loss_backward
from kosim.training.trainer import Trainer, TrainingError

__all__ = [
    "CheckpointCorruptError",
    "Trainer",
    "TrainingArguments",
    "TrainingError",
    "latest_checkpoint",
    "loss_backward",
]
