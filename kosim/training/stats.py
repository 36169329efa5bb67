"""The logging window: running sums between two log lines, turned into one `train_log.jsonl` record."""

from __future__ import annotations

import resource
import time
from typing import Any

import torch
from torch import Tensor

from kosim.training.distributed import all_reduce_mean


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class RunningStats:
    """Loss, rows, tokens and padding summed over the micro-batches since the last record.

    The loss stays on the device (adding it costs no host sync); it is read once per record.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.loss = torch.zeros((), device=self.device)
        self.batches, self.rows, self.tokens, self.padding = 0, 0, 0, 0.0
        self.start = time.perf_counter()

    def add(self, loss: Tensor, rows: int, tokens: int, padding_fraction: float) -> None:
        """One micro-batch: its detached loss, its global rows and tokens, its padding fraction."""
        self.loss += loss
        self.batches += 1
        self.rows += rows
        self.tokens += tokens
        self.padding += padding_fraction

    def record(
        self, step: int, steps_per_epoch: int, learning_rate: float, grad_norm: Tensor, skipped_steps: int
    ) -> dict[str, Any]:
        """The log record of the window ending at optimizer step `step` (mean loss over processes); resets."""
        seconds = max(time.perf_counter() - self.start, 1e-9)
        batches = max(self.batches, 1)
        record = {
            "step": step,
            "epoch": round(step / steps_per_epoch, 4),
            "loss": all_reduce_mean(self.loss / batches).item(),
            "learning_rate": learning_rate,
            "grad_norm": float(grad_norm),
            "samples_per_second": self.rows / seconds,
            "tokens_per_second": self.tokens / seconds,
            "padding_fraction": self.padding / batches,
            "peak_memory_mb": peak_memory_mb(self.device),
            "skipped_steps": skipped_steps,
        }
        self.reset()
        return record
