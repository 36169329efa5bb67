"""kosim.training: TrainingArguments, the Trainer loop, the loss step (GradCache, gather), checkpoints."""

from __future__ import annotations

from kosim.training.arguments import TrainingArguments
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
