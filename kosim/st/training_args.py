"""`SentenceTransformerTrainingArguments`: the Hugging Face / sentence-transformers argument names, on kosim's
TrainingArguments.

Every name a `transformers.TrainingArguments` takes is accepted in one of three ways:

    mapped       onto kosim's TrainingArguments (batch sizes, epochs/steps, learning rate and schedule, warm-up,
                 weight decay, Adam, clipping, fp16/bf16, seed, accumulation, eval/save/logging steps, samplers,
                 prompts, drop_last, use_cpu, optim="adamw_torch[_fused]")
    harmless     any value: names that change no result (run_name, report_to="none", dataloader workers, log
                 levels, ...); kosim has no data-loading workers, it tokenizes every dataset once
    unsupported  only its default value; any other raises a ValueError naming it (never silently ignored)

`training_arguments()` gives kosim's TrainingArguments; it is built (and so validated) at construction.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from kosim.config.arguments import TrainingArguments
from kosim.utils.suggest import did_you_mean

__all__ = ["BatchSamplers", "MultiDatasetBatchSamplers", "SentenceTransformerTrainingArguments"]


class _Choice(str, Enum):
    """A str enum whose unknown values are a ValueError listing the choices (sentence-transformers' enums)."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        choices = [m.value for m in cls]
        raise ValueError(f"{value!r} is not a valid {cls.__name__}; choose one of {choices}")


class BatchSamplers(_Choice):
    """How rows are grouped into batches: kosim's `batch_sampler` / `no_duplicates` / `group_by_label` samplers
    (`NO_DUPLICATES_HASHED` is sentence-transformers' faster variant of the same batches: kosim's no-duplicates)."""

    BATCH_SAMPLER = "batch_sampler"
    NO_DUPLICATES = "no_duplicates"
    NO_DUPLICATES_HASHED = "no_duplicates_hashed"
    GROUP_BY_LABEL = "group_by_label"


class MultiDatasetBatchSamplers(_Choice):
    """How batches of several datasets interleave: one from each in turn, or in proportion to their sizes."""

    ROUND_ROBIN = "round_robin"
    PROPORTIONAL = "proportional"


_NEVER = 2**62  # a step interval no run reaches ("no" saving / logging)

# name -> transformers' default, for the names mapped onto kosim's TrainingArguments
MAPPED: dict[str, Any] = {
    "output_dir": None,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 8,
    "num_train_epochs": 3.0,
    "max_steps": -1,
    "learning_rate": 5e-5,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0,
    "warmup_ratio": None,
    "weight_decay": 0.0,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_epsilon": 1e-8,
    "optim": "adamw_torch_fused",
    "gradient_accumulation_steps": 1,
    "max_grad_norm": 1.0,
    "fp16": False,
    "bf16": False,
    "seed": 42,
    "logging_strategy": "steps",
    "logging_steps": 500,
    "eval_strategy": "no",
    "eval_steps": None,
    "save_strategy": "steps",
    "save_steps": 500,
    "save_total_limit": None,
    "dataloader_drop_last": False,
    "disable_tqdm": None,
    "use_cpu": False,
    "report_to": "none",
    "prompts": None,
    "batch_sampler": BatchSamplers.BATCH_SAMPLER,
    "multi_dataset_batch_sampler": MultiDatasetBatchSamplers.PROPORTIONAL,
    "data_seed": None,  # sentence-transformers' samplers draw from `seed` (so do kosim's): only None
    "resume_from_checkpoint": None,  # transformers' Trainer ignores it: pass it to train() instead
}
# names that change no result: accepted with any value
HARMLESS: dict[str, Any] = {
    "run_name": None,
    "project": "huggingface",
    "log_level": "passive",
    "log_level_replica": "warning",
    "log_on_each_node": True,
    "logging_nan_inf_filter": True,  # kosim refuses a non-finite step instead
    "skip_memory_metrics": True,
    "do_train": False,
    "do_eval": False,
    "do_predict": False,
    "dataloader_num_workers": 0,
    "dataloader_pin_memory": True,
    "dataloader_persistent_workers": False,
    "dataloader_prefetch_factor": None,
    "dataloader_multiprocessing_context": None,
    "dataloader_in_order": True,
    "prediction_loss_only": False,
    "remove_unused_columns": True,
    "ddp_broadcast_buffers": None,
    "ddp_timeout": 1800,
    "local_rank": -1,  # kosim reads torchrun's environment
    "average_tokens_across_devices": True,
    "use_cache": False,
}
# names kosim has no equivalent for: only their default value is accepted
UNSUPPORTED: dict[str, Any] = {
    **dict.fromkeys(
        ("lr_scheduler_kwargs", "optim_args", "optim_target_modules", "tf32", "activation_checkpointing"),
        None,
    ),
    **dict.fromkeys(("activation_checkpointing_kwargs", "gradient_checkpointing", "gradient_checkpointing_kwargs"), None),
    **dict.fromkeys(("torch_compile_backend", "torch_compile_mode", "liger_kernel_config", "neftune_noise_alpha"), None),
    **dict.fromkeys(("torch_empty_cache_steps", "eval_accumulation_steps", "hub_token", "hub_private_repo"), None),
    **dict.fromkeys(("hub_model_id", "hub_revision", "metric_for_best_model", "greater_is_better"), None),
    **dict.fromkeys(("accelerator_config", "parallelism_config", "label_names", "ddp_find_unused_parameters"), None),
    **dict.fromkeys(("ddp_bucket_cap_mb", "ddp_static_graph", "ddp_backend", "fsdp", "fsdp_config", "deepspeed"), None),
    **dict.fromkeys(("trackio_space_id", "trackio_bucket_id", "trackio_static_space_id"), None),
    **dict.fromkeys(("bf16_full_eval", "fp16_full_eval", "torch_compile", "use_liger_kernel"), False),
    **dict.fromkeys(("auto_find_batch_size", "logging_first_step", "eval_on_start", "eval_use_gather_object"), False),
    **dict.fromkeys(("batch_eval_metrics", "save_only_model", "save_on_each_node", "enable_jit_checkpoint"), False),
    **dict.fromkeys(("push_to_hub", "hub_always_push", "load_best_model_at_end", "ignore_data_skip"), False),
    **dict.fromkeys(("restore_callback_states_from_checkpoint", "full_determinism"), False),
    "label_smoothing_factor": 0.0,
    "include_num_input_tokens_seen": "no",
    "eval_delay": 0,
    "eval_do_concat_batches": True,
    "include_for_metrics": [],
    "hub_strategy": "every_save",
    "train_sampling_strategy": "random",
    "length_column_name": "length",
    "debug": "",
    "router_mapping": {},
    "learning_rate_mapping": {},
}  # fmt: skip
_DEFAULTS = {**MAPPED, **HARMLESS, **UNSUPPORTED}
_SCHEDULERS = ("linear", "constant", "constant_with_warmup")
_OPTIMIZERS = ("adamw_torch", "adamw_torch_fused")  # torch's AdamW, as kosim's Trainer uses
_NO_REPORT = (None, "none", [], ["none"], ())


def _value(x: Any) -> Any:
    """A str enum member (ours, or transformers' IntervalStrategy / SchedulerType) as its str."""
    return x.value if isinstance(x, Enum) else x


class SentenceTransformerTrainingArguments:
    """sentence-transformers' training arguments (`transformers.TrainingArguments`' names and defaults); see the
    module docstring for which names map onto kosim. Attributes read like transformers' (`args.seed`, ...)."""

    def __init__(self, output_dir: str | None = None, **kwargs: Any) -> None:
        for name in kwargs:
            if name not in _DEFAULTS:
                raise TypeError(
                    f"SentenceTransformerTrainingArguments got an unexpected argument {name!r}"
                    f"{did_you_mean(name, list(_DEFAULTS))}"
                )
        for name, value in {**_DEFAULTS, **kwargs, "output_dir": output_dir}.items():
            setattr(self, name, value)
        for name, default in UNSUPPORTED.items():
            if _value(getattr(self, name)) != default:
                raise ValueError(
                    f"SentenceTransformerTrainingArguments: {name}={getattr(self, name)!r} is not supported by "
                    f"kosim.st (only {default!r})"
                )
        self.batch_sampler = self._enum(BatchSamplers, "batch_sampler")
        self.multi_dataset_batch_sampler = self._enum(MultiDatasetBatchSamplers, "multi_dataset_batch_sampler")
        self.training_arguments()  # every mapped value is checked now, as transformers checks at construction

    def _enum(self, kind: type[_Choice], name: str) -> _Choice:
        value = getattr(self, name)
        if isinstance(value, kind):
            return value
        if not isinstance(value, str):
            raise ValueError(
                f"SentenceTransformerTrainingArguments: {name}={value!r}: custom sampler classes and functions are "
                f"not supported by kosim.st; choose one of {[m.value for m in kind]}"
            )
        return kind(_value(value))

    def _refuse(self, name: str, why: str) -> None:
        raise ValueError(f"SentenceTransformerTrainingArguments: {name}={getattr(self, name)!r}: {why}")

    def _interval(self, name: str, strategy: str, choices: tuple[str, ...]) -> str:
        """An interval strategy (`steps` / `no` / `epoch`) among those kosim has for it."""
        value = _value(getattr(self, strategy))
        if value not in choices:
            self._refuse(strategy, f"kosim.st supports {list(choices)}")
        steps = getattr(self, name)
        if isinstance(steps, float) and not steps.is_integer():
            self._refuse(name, "a fraction of the run is not supported by kosim.st; give a number of steps")
        return value

    def _warmup(self) -> tuple[int, float]:
        """(warm-up steps, warm-up ratio): transformers 5 takes a float below 1 in `warmup_steps` as a ratio."""
        steps, ratio = self.warmup_steps, self.warmup_ratio
        if isinstance(steps, float) and 0 < steps < 1:
            return 0, steps
        if isinstance(steps, float) and steps.is_integer():
            steps = int(steps)
        return steps, 0.0 if ratio is None else ratio

    def training_arguments(self, **overrides: Any) -> TrainingArguments:
        """kosim's TrainingArguments for these arguments (`overrides`: kosim's own knobs, e.g. `mini_batch_size`)."""
        for name in ("data_seed", "resume_from_checkpoint"):
            if getattr(self, name) is not None:
                why = (
                    "pass it to trainer.train(resume_from_checkpoint=...)"
                    if name == "resume_from_checkpoint"
                    else ("kosim's samplers draw from `seed`, as sentence-transformers' do; set seed instead")
                )
                self._refuse(name, f"not supported by kosim.st: {why}")
        if _value(self.optim) not in _OPTIMIZERS:
            self._refuse("optim", f"kosim trains with torch's AdamW: one of {list(_OPTIMIZERS)}")
        if _value(self.lr_scheduler_type) not in _SCHEDULERS:
            self._refuse("lr_scheduler_type", f"kosim.st supports {list(_SCHEDULERS)}")
        if self.report_to not in _NO_REPORT:
            self._refuse("report_to", 'kosim logs to train_log.jsonl in output_dir; use report_to="none"')
        logging = self._interval("logging_steps", "logging_strategy", ("steps", "no"))
        saving = self._interval("save_steps", "save_strategy", ("steps", "no"))
        self._interval("eval_steps", "eval_strategy", ("no", "steps", "epoch"))
        warmup_steps, warmup_ratio = self._warmup()
        batch_sampler = self.batch_sampler.value
        values = {
            "output_dir": self.output_dir or "trainer_output",
            **{n: getattr(self, n) for n in ("per_device_train_batch_size", "per_device_eval_batch_size")},
            **{n: getattr(self, n) for n in ("num_train_epochs", "max_steps", "learning_rate", "weight_decay")},
            **{n: getattr(self, n) for n in ("adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm")},
            **{n: getattr(self, n) for n in ("fp16", "bf16", "seed", "gradient_accumulation_steps")},
            "lr_scheduler_type": _value(self.lr_scheduler_type),
            "warmup_steps": warmup_steps,
            "warmup_ratio": warmup_ratio,
            "eval_strategy": _value(self.eval_strategy),
            "eval_steps": None if self.eval_steps is None else int(self.eval_steps),
            "logging_steps": int(self.logging_steps) if logging == "steps" else _NEVER,
            "save_steps": int(self.save_steps) if saving == "steps" else _NEVER,
            "save_total_limit": self.save_total_limit or None,  # transformers: 0 or None keeps every checkpoint
            "dataloader_drop_last": self.dataloader_drop_last,
            "disable_tqdm": bool(self.disable_tqdm),
            "device": "cpu" if self.use_cpu else None,
            "prompts": self.prompts,
            "batch_sampler": "no_duplicates" if batch_sampler == "no_duplicates_hashed" else batch_sampler,
            "multi_dataset_batch_sampler": self.multi_dataset_batch_sampler.value,
        }
        return TrainingArguments(**{**values, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Every argument by name (enum members as their values)."""
        return {name: _value(getattr(self, name)) for name in _DEFAULTS}

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.to_dict().items() if v != _value(_DEFAULTS[k])}
        return f"SentenceTransformerTrainingArguments({', '.join(f'{k}={v!r}' for k, v in changed.items())})"
