"""TrainingArguments: every knob of a training run, with sentence-transformers' names and defaults.

Built once at the edge (script, CLI, TOML), validated here, then read by the Trainer as plain values.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

BATCH_SAMPLERS = ("batch_sampler", "no_duplicates")
MULTI_DATASET_SAMPLERS = ("round_robin", "proportional")
EVAL_STRATEGIES = ("no", "steps", "epoch")
SCHEDULERS = ("linear", "constant", "constant_with_warmup")


@dataclass
class TrainingArguments:
    output_dir: str = "output"
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    num_train_epochs: float = 3.0
    max_steps: int = -1
    warmup_ratio: float = 0.0
    warmup_steps: int = 0
    lr_scheduler_type: str = "linear"
    eval_strategy: str = "no"
    eval_steps: int | None = None
    logging_steps: int = 500
    save_steps: int = 500
    save_total_limit: int | None = None
    seed: int = 42
    fp16: bool = False
    bf16: bool | str = False  # True, False, or "auto": bf16 where the device runs it natively (kosim.precision)
    gradient_accumulation_steps: int = 1
    batch_sampler: str = "batch_sampler"
    multi_dataset_batch_sampler: str = "proportional"
    dataloader_num_workers: int = 0
    dataloader_drop_last: bool = False
    resume_from_checkpoint: str | bool | None = None
    # kosim's own knobs
    mini_batch_size: int | None = None  # gradient caching: rows embedded per forward (None = off)
    gather_across_devices: bool = False  # MNRL sees every process's in-batch negatives
    max_tokens_per_batch: int | None = None  # split a batch whose tokens exceed this into cached mini-batches
    max_consecutive_skipped_steps: int = 20  # fp16: stop after this many GradScaler skips in a row
    overwrite_output_dir: bool = False
    disable_tqdm: bool = False
    device: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # free-form notes for the model card

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject invalid values, naming the field."""

        def bad(name: str, why: str) -> None:
            raise ValueError(f"TrainingArguments.{name}={getattr(self, name)!r}: {why}")

        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                bad(name, "must be a positive int")
        for name in ("logging_steps", "save_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                bad(name, "must be a positive int")
        for name in ("learning_rate", "weight_decay", "adam_epsilon", "max_grad_norm", "num_train_epochs"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                bad(name, "must be a finite number >= 0")

        def number(name: str) -> float:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                bad(name, "must be a finite number")
            return value

        for name in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= number(name) < 1.0:
                bad(name, "must be in [0, 1)")
        if not 0.0 <= number("warmup_ratio") <= 1.0:
            bad("warmup_ratio", "must be in [0, 1]")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            bad("warmup_steps", "must be an int >= 0")
        if not isinstance(self.max_steps, int) or (self.max_steps < 1 and self.max_steps != -1):
            bad("max_steps", "must be a positive int, or -1 to train num_train_epochs")
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            bad("num_train_epochs", "must be > 0 when max_steps is -1")
        if self.lr_scheduler_type not in SCHEDULERS:
            bad("lr_scheduler_type", f"expected one of {SCHEDULERS}")
        if self.eval_strategy not in EVAL_STRATEGIES:
            bad("eval_strategy", f"expected one of {EVAL_STRATEGIES}")
        if self.eval_strategy == "steps" and self.eval_steps is None:
            self.eval_steps = self.logging_steps
        if self.save_total_limit is not None and (
            not isinstance(self.save_total_limit, int) or self.save_total_limit < 1
        ):
            bad("save_total_limit", "must be a positive int or None")
        if self.batch_sampler not in BATCH_SAMPLERS:
            bad("batch_sampler", f"expected one of {BATCH_SAMPLERS}")
        if self.multi_dataset_batch_sampler not in MULTI_DATASET_SAMPLERS:
            bad("multi_dataset_batch_sampler", f"expected one of {MULTI_DATASET_SAMPLERS}")
        if not (isinstance(self.bf16, bool) or self.bf16 == "auto"):
            bad("bf16", 'expected true, false or "auto"')
        if not isinstance(self.fp16, bool):
            bad("fp16", "expected true or false")
        if self.fp16 and self.bf16:
            bad("fp16", "fp16 and bf16 cannot both be on")
        if not isinstance(self.dataloader_num_workers, int) or self.dataloader_num_workers < 0:
            bad("dataloader_num_workers", "must be an int >= 0")
        if self.mini_batch_size is not None and (not isinstance(self.mini_batch_size, int) or self.mini_batch_size < 1):
            bad("mini_batch_size", "must be a positive int or None")
        for name in ("max_tokens_per_batch", "eval_steps"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                bad(name, "must be a positive int or None")
        if not isinstance(self.output_dir, str) or not self.output_dir:
            bad("output_dir", "must be a non-empty path")
        value = self.max_consecutive_skipped_steps
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            bad("max_consecutive_skipped_steps", "must be a positive int")

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "TrainingArguments") -> TrainingArguments:
        """Build from a mapping (e.g. a TOML table); unknown keys are an error with a suggestion."""
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"{source}: unknown training argument {key!r}{hint}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        return out

    def non_defaults(self) -> dict[str, Any]:
        """Fields that differ from their defaults (for the model card)."""
        default = TrainingArguments()
        return {k: v for k, v in self.to_dict().items() if v != getattr(default, k)}
