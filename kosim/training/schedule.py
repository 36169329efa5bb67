"""Learning-rate schedules: linear decay with linear warm-up (and constant variants), as LambdaLR factors."""

from __future__ import annotations

import math

import torch


def warmup_steps_for(total_steps: int, warmup_steps: int, warmup_ratio: float) -> int:
    """Explicit warm-up steps win; otherwise `ceil(warmup_ratio * total_steps)` (transformers' rule)."""
    return warmup_steps if warmup_steps > 0 else math.ceil(warmup_ratio * total_steps)


def lr_factor(step: int, total_steps: int, warmup: int, kind: str = "linear") -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based)."""
    if kind == "constant":
        return 1.0
    if step < warmup:
        return step / max(1, warmup)
    if kind == "constant_with_warmup":
        return 1.0
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup))


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup: int, kind: str):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, warmup, kind))
