"""The Trainer's set-up: everything a run needs, built once into one small `TrainState` (as torchtune's `setup`).

    set_seed -> model on its device (DDP-wrapped under torchrun) -> tokenize every dataset once -> samplers
    -> losses on the device, GIST losses bound to their guide tables (kosim.training.loss_setup)
    -> AdamW over the model and the losses' parameters (no decay on biases and LayerNorm)
    -> learning-rate schedule -> GradScaler (a no-op unless fp16)

The checkpoint holds the fields named in `kosim.training.checkpoint.STATEFUL` and `COUNTERS`.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from kosim.config.arguments import TrainingArguments
from kosim.data.datasets import ColumnDataset, TokenizedDataset
from kosim.data.group_by_label import GroupByLabelBatchSampler
from kosim.data.samplers import BatchSampler, MultiDatasetBatchSampler, NoDuplicatesBatchSampler
from kosim.model import SentenceEncoder
from kosim.precision import resolve_bf16
from kosim.training.distributed import DistInfo
from kosim.training.errors import TrainingError
from kosim.training.loss_setup import bind_guides, losses_with_parameters
from kosim.training.schedule import build_scheduler, warmup_steps_for
from kosim.training.step import SkipCounter
from kosim.utils.memory import keep_freed_memory


@dataclass
class TrainState:
    """One run: its components, its size, and the counters a checkpoint saves."""

    model: SentenceEncoder
    step_model: nn.Module  # the model, or its DistributedDataParallel wrapper
    device: torch.device
    dtype: str  # autocast dtype: "float32", "bfloat16" or "float16"
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler  # disabled (a no-op) unless fp16
    sampler: MultiDatasetBatchSampler
    names: list[str]  # train dataset names, in sampler order
    tokenized: list[TokenizedDataset]
    losses: list[nn.Module]  # in sampler order; GIST losses bound to their dataset's guide table
    steps_per_epoch: int
    total_steps: int
    num_epochs: int
    skips: SkipCounter
    global_step: int = 0
    log_history: list[dict[str, Any]] = field(default_factory=list)
    loss_parameters: list[nn.Parameter] = field(default_factory=list)  # optimized (and clipped) with the model's

    @property
    def skipped_steps(self) -> int:
        return self.skips.total

    @skipped_steps.setter
    def skipped_steps(self, value: int) -> None:
        self.skips.total = value

    @property
    def finished(self) -> bool:
        return self.global_step >= self.total_steps


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: biases and LayerNorm weights get no weight decay (pass a container of the model
    and the losses with parameters to optimize both: the model's parameters come first)."""
    decay, no_decay = [], []
    norm_params = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name.endswith("bias") or id(p) in norm_params else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def fused_adamw_supported(params: list[torch.Tensor]) -> bool:
    """Whether torch's fused AdamW kernel (one pass over all parameters) can update `params`.

    On CPU the default AdamW updates one tensor at a time with ~10 elementwise ops each; for a small model at a
    small batch (MiniLM, 16 pairs) that was ~15% of the training step, mostly over the 11.7M-row-element word
    embedding. The fused kernel computes the same update in one pass (the same formula, float rounding aside).
    """
    return bool(params) and all(
        p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float16, torch.bfloat16) for p in params
    )


def compute_dtype(args: TrainingArguments, device: torch.device) -> str:
    """The autocast dtype on `device`: "bfloat16", "float16" or "float32" (bf16="auto" resolved here).

    Called before the output directory is touched, so a run refused here leaves nothing behind.
    """
    if args.fp16 and device.type != "cuda":
        raise TrainingError("fp16 training needs a CUDA device; use bf16 on CPU")
    return "bfloat16" if resolve_bf16(args.bf16, device) else "float16" if args.fp16 else "float32"


def warn_label_ranges(datasets: Mapping[str, ColumnDataset], losses: Mapping[str, nn.Module]) -> None:
    """Warn (once per dataset) when labels fall outside the range the dataset's loss expects (`label_range`)."""
    for name, data in datasets.items():
        expected = getattr(losses[name], "label_range", None)
        labels = data.labels
        if expected is None or labels is None or len(labels) == 0:
            continue
        low, high = float(np.min(labels)), float(np.max(labels))
        if low < expected[0] or high > expected[1]:
            warnings.warn(
                f"dataset {name!r}: labels range over [{low:g}, {high:g}] but {type(losses[name]).__name__} "
                f"expects labels in [{expected[0]:g}, {expected[1]:g}]; scale them to [0, 1] "
                "(e.g. divide 0-5 similarity scores by 5)",
                UserWarning,
                stacklevel=3,
            )


def _sampler(data: TokenizedDataset, args: TrainingArguments, world_size: int):
    batch = args.per_device_train_batch_size * world_size
    if args.batch_sampler == "no_duplicates":
        return NoDuplicatesBatchSampler(
            data, batch, drop_last=args.dataloader_drop_last, seed=args.seed, min_batch_rows=2
        )
    if args.batch_sampler == "group_by_label":
        return GroupByLabelBatchSampler(data, batch, drop_last=args.dataloader_drop_last, seed=args.seed)
    return BatchSampler(data, batch, drop_last=args.dataloader_drop_last, seed=args.seed)


def build_state(
    model: SentenceEncoder,
    args: TrainingArguments,
    datasets: Mapping[str, ColumnDataset],
    losses: Mapping[str, nn.Module],
    device: torch.device,
    dist: DistInfo,
    prompts: Mapping[str, Mapping[str, str]] | None = None,
    guides: Mapping[str, SentenceEncoder] | None = None,
) -> TrainState:
    """Seed, move the model and losses, tokenize, bind guide tables, and build sampler, optimizer, schedule and
    scaler for a fresh run. On CPU, the process's malloc keeps freed memory from then on (`keep_freed_memory`).

    `prompts` (`{dataset: {column: prompt}}`, see kosim.config.prompts) go before the texts as they are tokenized;
    `guides` is the guide model of each dataset whose loss is GIST.
    """
    set_seed(args.seed)
    if device.type == "cpu":
        keep_freed_memory()  # each step reuses the memory the last one freed (no page faults per step)
    model = model.to(device)
    model.train()
    step_model: nn.Module = model
    if dist.enabled:
        step_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    names = list(datasets)
    prompts = prompts or {}
    prompt_length = model.tokenizer.prompt_length
    tokenized = [
        datasets[n].tokenize(model.tokenizer, prompts=prompts.get(n), prompt_length_fn=prompt_length) for n in names
    ]
    sampler = MultiDatasetBatchSampler(
        [_sampler(t, args, dist.world_size) for t in tokenized],
        strategy=args.multi_dataset_batch_sampler,
        seed=args.seed,
    )
    batches_per_epoch = len(sampler.plan(0))
    steps_per_epoch = max(1, batches_per_epoch // args.gradient_accumulation_steps)
    total_steps = args.max_steps if args.max_steps > 0 else math.ceil(args.num_train_epochs * steps_per_epoch)
    for loss in losses.values():
        loss.to(device)
    progress = None if dist.is_main and not args.disable_tqdm else False
    batch = args.per_device_eval_batch_size
    bound = bind_guides(
        [losses[n] for n in names],
        names,
        datasets,
        guides or {},
        device,
        model.max_seq_length,
        batch,
        progress,
        prompts,
    )
    heads = nn.ModuleList(dict.fromkeys(losses_with_parameters(losses).values()))  # each distinct loss once
    groups = decay_groups(nn.ModuleDict({"model": model, "losses": heads}) if len(heads) else model, args.weight_decay)
    optimizer = torch.optim.AdamW(
        groups,
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        fused=fused_adamw_supported([p for g in groups for p in g["params"]]),
    )
    warmup = warmup_steps_for(total_steps, args.warmup_steps, args.warmup_ratio)
    return TrainState(
        model=model,
        step_model=step_model,
        device=device,
        dtype=compute_dtype(args, device),
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, total_steps, warmup, args.lr_scheduler_type),
        scaler=torch.amp.GradScaler("cuda", enabled=bool(args.fp16)),
        sampler=sampler,
        names=names,
        tokenized=tokenized,
        losses=bound,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        num_epochs=math.ceil(total_steps / steps_per_epoch),
        skips=SkipCounter(limit=args.max_consecutive_skipped_steps),
        loss_parameters=list(heads.parameters()),
    )
