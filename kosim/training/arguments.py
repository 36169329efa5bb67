"""TrainingArguments, defined with the other run-config dataclasses in :mod:`kosim.config.arguments`."""

from __future__ import annotations

from kosim.config.arguments import (
    BATCH_SAMPLERS,
    EVAL_STRATEGIES,
    MULTI_DATASET_SAMPLERS,
    REMOVED,
    SCHEDULERS,
    TrainingArguments,
)

__all__ = ["BATCH_SAMPLERS", "EVAL_STRATEGIES", "MULTI_DATASET_SAMPLERS", "REMOVED", "SCHEDULERS", "TrainingArguments"]
