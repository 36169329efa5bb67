"""The error a training run stops with (the CLI reports it as "training failed", exit 1)."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss or gradients, too many skipped fp16 steps, a conflicting output
    directory)."""
