"""TrainingArguments: every knob of a training run, with sentence-transformers' names and defaults.

Built once at the edge (script, CLI, TOML), validated here, then read by the Trainer as plain values. It lives in
:mod:`kosim.config` (no torch at import) and is re-exported as ``kosim.training.arguments.TrainingArguments``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from kosim.config.prompts import check_prompts
from kosim.utils.suggest import did_you_mean

BATCH_SAMPLERS = ("batch_sampler", "no_duplicates", "group_by_label")
MULTI_DATASET_SAMPLERS = ("round_robin", "proportional")
EVAL_STRATEGIES = ("no", "steps", "epoch")
SCHEDULERS = ("linear", "constant", "constant_with_warmup")
# Arguments sentence-transformers has and kosim does not, with the reason (a config naming one is an error).
REMOVED = {
    "dataloader_num_workers": "kosim tokenizes every dataset once before training and collates in the training "
    "process, so there are no data-loading workers; remove the key",
}


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
    # text put before a column's texts at tokenization: a str, {column: prompt} or {dataset: {column: prompt}}
    prompts: str | dict[str, Any] | None = None
    card_notes: dict[str, Any] = field(default_factory=dict, repr=False)  # free-form notes for the model card

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject invalid values, naming the field: types first (a bool is not an int), then ranges and choices."""

        def bad(name: str, why: str) -> None:
            raise ValueError(f"TrainingArguments.{name}={getattr(self, name)!r}: {why}")

        for name, (kind, why) in _TYPES.items():
            if not _is(getattr(self, name), kind):
                bad(name, why)
        for name in _POSITIVE_INTS:
            if getattr(self, name) < 1:
                bad(name, "must be a positive int")
        for name in _POSITIVE_OR_NONE:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                bad(name, "must be a positive int or None")
        for name in ("learning_rate", "weight_decay", "adam_epsilon", "max_grad_norm", "num_train_epochs"):
            if getattr(self, name) < 0:
                bad(name, "must be a finite number >= 0")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                bad(name, "must be in [0, 1)")
        if not 0.0 <= self.warmup_ratio <= 1.0:
            bad("warmup_ratio", "must be in [0, 1]")
        if self.warmup_steps < 0:
            bad("warmup_steps", "must be an int >= 0")
        if self.max_steps < 1 and self.max_steps != -1:
            bad("max_steps", "must be a positive int, or -1 to train num_train_epochs")
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            bad("num_train_epochs", "must be > 0 when max_steps is -1")
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                bad(name, f"expected one of {choices}")
        if self.eval_strategy == "steps" and self.eval_steps is None:
            self.eval_steps = self.logging_steps
        if self.fp16 and self.bf16:
            bad("fp16", "fp16 and bf16 cannot both be on")
        if not self.output_dir:
            bad("output_dir", "must be a non-empty path")
        why = check_prompts(self.prompts)
        if why is not None:
            bad("prompts", why)
        if self.device is not None:
            from kosim.utils.device import resolve_device  # imports torch: only when a device is named

            try:
                resolve_device(self.device)
            except ValueError as exc:
                bad("device", str(exc))

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "TrainingArguments") -> TrainingArguments:
        """Build from a mapping (e.g. a TOML table); unknown keys are an error with a suggestion."""
        known = {f.name for f in fields(cls)}
        for key in values:
            if key in REMOVED:
                raise ValueError(f"{source}: training argument {key!r} is not supported: {REMOVED[key]}")
            if key not in known:
                raise ValueError(f"{source}: unknown training argument {key!r}{did_you_mean(key, known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Every argument except the card notes (what ``run_config.json`` records and the card lists)."""
        out = asdict(self)
        out.pop("card_notes")
        return out

    def non_defaults(self) -> dict[str, Any]:
        """Fields that differ from their defaults (for the model card)."""
        default = TrainingArguments()
        return {k: v for k, v in self.to_dict().items() if v != getattr(default, k)}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_KINDS = {  # a kind ending in "?" also accepts None
    "int": _is_int,
    "number": lambda v: (_is_int(v) or isinstance(v, float)) and math.isfinite(v),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bool|auto": lambda v: isinstance(v, bool) or v == "auto",
    "str|bool": lambda v: isinstance(v, (str, bool)),
    "dict": lambda v: isinstance(v, dict),
}


def _is(value: Any, kind: str) -> bool:
    """Whether ``value`` has the kind named in :data:`_TYPES` (a bool is never an int or a number)."""
    return (kind.endswith("?") and value is None) or _KINDS[kind.rstrip("?")](value)


_POSITIVE_OR_NONE = ("eval_steps", "save_total_limit", "mini_batch_size", "max_tokens_per_batch")
_INT, _NUMBER = ("int", "must be a positive int"), ("number", "must be a finite number")
_TYPES = {
    **dict.fromkeys(("per_device_train_batch_size", "per_device_eval_batch_size"), _INT),
    **dict.fromkeys(("gradient_accumulation_steps", "logging_steps", "save_steps"), _INT),
    "max_consecutive_skipped_steps": _INT,
    **dict.fromkeys(("learning_rate", "weight_decay", "adam_epsilon", "max_grad_norm"), ("number", "must be a finite number >= 0")),
    "num_train_epochs": ("number", "must be a finite number >= 0"),
    **dict.fromkeys(("adam_beta1", "adam_beta2", "warmup_ratio"), _NUMBER),
    "warmup_steps": ("int", "must be an int >= 0"),
    "max_steps": ("int", "must be a positive int, or -1 to train num_train_epochs"),
    "seed": ("int", "must be an int"),
    **dict.fromkeys(_POSITIVE_OR_NONE, ("int?", "must be a positive int or None")),
    "fp16": ("bool", "expected true or false"),
    "bf16": ("bool|auto", 'expected true, false or "auto"'),
    **dict.fromkeys(("dataloader_drop_last", "gather_across_devices", "overwrite_output_dir", "disable_tqdm"), ("bool", "expected true or false")),
    "lr_scheduler_type": ("str", f"expected one of {SCHEDULERS}"),
    "eval_strategy": ("str", f"expected one of {EVAL_STRATEGIES}"),
    "batch_sampler": ("str", f"expected one of {BATCH_SAMPLERS}"),
    "multi_dataset_batch_sampler": ("str", f"expected one of {MULTI_DATASET_SAMPLERS}"),
    "output_dir": ("str", "must be a non-empty path"),
    "device": ("str?", "expected a device string such as 'cpu' or 'cuda:0'"),
    "resume_from_checkpoint": ("str|bool?", "expected true, false or a checkpoint path"),
    "card_notes": ("dict", "expected a mapping of note name to text"),
}  # fmt: skip
_POSITIVE_INTS = (
    "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps", "logging_steps",
    "save_steps", "max_consecutive_skipped_steps",
)  # fmt: skip
_CHOICES = {
    "lr_scheduler_type": SCHEDULERS,
    "eval_strategy": EVAL_STRATEGIES,
    "batch_sampler": BATCH_SAMPLERS,
    "multi_dataset_batch_sampler": MULTI_DATASET_SAMPLERS,
}
