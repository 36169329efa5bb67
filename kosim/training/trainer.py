"""Trainer: the AdamW training loop, written out top to bottom.

    tokenize every dataset once -> samplers -> (AdamW, linear schedule, optional GradScaler)
    for each step: collate a packed batch -> one forward for all columns -> loss -> backward
                   -> clip -> optimizer step -> log / evaluate / checkpoint

Several datasets each train with their own loss; batches come round_robin or proportional. Multi-process runs
(torchrun) wrap the model in DistributedDataParallel; each process trains on its share of every global batch.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import resource
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kosim.data.collate import collate, split_rows
from kosim.data.datasets import ColumnDataset, TokenizedDataset
from kosim.data.samplers import BatchSampler, MultiDatasetBatchSampler, NoDuplicatesBatchSampler
from kosim.model import SentenceEncoder
from kosim.precision import autocast as autocast_context
from kosim.precision import resolve_bf16
from kosim.training.arguments import TrainingArguments
from kosim.training.checkpoint import latest_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from kosim.training.distributed import DistInfo, all_reduce_mean, setup_from_env
from kosim.training.schedule import build_scheduler, warmup_steps_for
from kosim.training.step import loss_backward

Evaluator = Callable[[SentenceEncoder], dict[str, float]]
RUN_CONFIG = "run_config.json"
LOG_FILE = "train_log.jsonl"


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, too many skipped fp16 steps, a conflicting output directory)."""


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: biases and LayerNorm weights get no weight decay."""
    decay, no_decay = [], []
    norm_params = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name.endswith("bias") or id(p) in norm_params else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _as_named(x: Any, what: str) -> dict[str, Any]:
    if x is None:
        return {}
    if isinstance(x, Mapping):
        return dict(x)
    return {"train" if what == "dataset" else "0": x}


class _StopSignal:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step (then it checkpoints and stops)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.received = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


class Trainer:
    """Train a SentenceEncoder on one or more column datasets, each with its own loss."""

    def __init__(
        self,
        model: SentenceEncoder,
        args: TrainingArguments,
        train_dataset: ColumnDataset | Mapping[str, ColumnDataset],
        loss: nn.Module | Mapping[str, nn.Module],
        eval_dataset: ColumnDataset | Mapping[str, ColumnDataset] | None = None,
        evaluator: Evaluator | Sequence[Evaluator] | None = None,
        base_model: str | None = None,
    ):
        self.model = model
        self.args = args
        self.train_datasets = _as_named(train_dataset, "dataset")
        if not self.train_datasets:
            raise ValueError("train_dataset is empty")
        losses = loss if isinstance(loss, Mapping) else {name: loss for name in self.train_datasets}
        missing = [n for n in self.train_datasets if n not in losses]
        if missing:
            raise ValueError(f"no loss for train dataset(s) {missing}; losses are given for {sorted(losses)}")
        self.losses = {n: losses[n] for n in self.train_datasets}
        self.eval_datasets = _as_named(eval_dataset, "dataset")
        self.evaluators = (
            [] if evaluator is None else list(evaluator) if isinstance(evaluator, Sequence) else [evaluator]
        )
        self.base_model = base_model
        self.log_history: list[dict[str, Any]] = []
        self.dist = DistInfo()
        self.output_dir = Path(args.output_dir)

    # ------------------------------------------------------------------------------------------------ set-up
    def _device(self) -> torch.device:
        if self.args.device:
            return torch.device(self.args.device)
        if torch.cuda.is_available():
            return torch.device("cuda", self.dist.local_rank)
        return torch.device("cpu")

    def _check_output_dir(self) -> None:
        """Refuse to mix two different runs in one output directory."""
        config = {
            k: v
            for k, v in self.args.to_dict().items()
            if k not in ("resume_from_checkpoint", "overwrite_output_dir", "disable_tqdm")
        }
        path = self.output_dir / RUN_CONFIG
        if path.is_file() and not self.args.overwrite_output_dir:
            previous = json.loads(path.read_text())
            diff = sorted(k for k in set(config) | set(previous) if config.get(k) != previous.get(k))
            if diff:
                raise TrainingError(
                    f"{self.output_dir} holds a different run (arguments differ: {diff}); "
                    "choose another output_dir or set overwrite_output_dir=True"
                )
        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(config, indent=1, default=str))

    def _sampler(self, data: TokenizedDataset, seed: int):
        batch = self.args.per_device_train_batch_size * self.dist.world_size
        if self.args.batch_sampler == "no_duplicates":
            return NoDuplicatesBatchSampler(data, batch, drop_last=self.args.dataloader_drop_last, seed=seed)
        return BatchSampler(data, batch, drop_last=self.args.dataloader_drop_last, seed=seed)

    def _compute_dtype(self, device: torch.device) -> str:
        """The autocast dtype on `device`: "bfloat16", "float16" or "float32" (bf16="auto" resolved here)."""
        if self.args.fp16 and device.type != "cuda":
            raise TrainingError("fp16 training needs a CUDA device; use bf16 on CPU")
        return "bfloat16" if resolve_bf16(self.args.bf16, device) else "float16" if self.args.fp16 else "float32"

    def _autocast(self, device: torch.device):
        return autocast_context(device, self._compute_dtype(device))

    # ------------------------------------------------------------------------------------------------ train
    def train(self) -> dict[str, float]:
        """Run training to the end (or to a stop signal); returns the final evaluation metrics."""
        args = self.args
        self.dist = setup_from_env()
        device = self._device()
        self._check_output_dir()
        set_seed(args.seed)
        model = self.model.to(device)
        model.train()
        step_model: nn.Module = model
        if self.dist.enabled:
            step_model = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )

        names = list(self.train_datasets)
        tokenized = [self.train_datasets[n].tokenize(model.tokenize) for n in names]
        losses = [self.losses[n] for n in names]
        sampler = MultiDatasetBatchSampler(
            [self._sampler(t, args.seed) for t in tokenized], strategy=args.multi_dataset_batch_sampler, seed=args.seed
        )
        batches_per_epoch = len(sampler.plan(0))
        steps_per_epoch = max(1, batches_per_epoch // args.gradient_accumulation_steps)
        total_steps = args.max_steps if args.max_steps > 0 else math.ceil(args.num_train_epochs * steps_per_epoch)
        num_epochs = math.ceil(total_steps / steps_per_epoch)

        optimizer = torch.optim.AdamW(
            decay_groups(model, args.weight_decay),
            lr=args.learning_rate,
            betas=(args.adam_beta1, args.adam_beta2),
            eps=args.adam_epsilon,
        )
        warmup = warmup_steps_for(total_steps, args.warmup_steps, args.warmup_ratio)
        scheduler = build_scheduler(optimizer, total_steps, warmup, args.lr_scheduler_type)
        scaler = torch.amp.GradScaler("cuda") if args.fp16 else None
        autocast = self._autocast(device)

        global_step, skipped_steps, consecutive_skips = 0, 0, 0
        resume = self._resume_path()
        if resume is not None:
            weights, state = load_checkpoint(resume)
            model.load_state_dict(weights)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            sampler.load_state_dict(state["sampler"])
            set_rng_state(state["rng"][min(self.dist.rank, len(state["rng"]) - 1)])
            global_step, skipped_steps = state["global_step"], state["skipped_steps"]
            self.log_history = list(state["log_history"])
        start_epoch = sampler.epoch

        def checkpoint_state() -> dict[str, Any]:
            return {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "sampler": sampler.state_dict(),
                "rng": self._gather_rng(),
                "global_step": global_step,
                "skipped_steps": skipped_steps,
                "log_history": self.log_history,
            }

        def save() -> Path | None:
            state = checkpoint_state()  # every process takes part in gathering RNG states
            if self.dist.is_main:
                return save_checkpoint(self.output_dir, global_step, model, state, keep=args.save_total_limit)
            return None

        def sync(last: bool):
            return step_model.no_sync() if self.dist.enabled and not last else contextlib.nullcontext()

        bar = None
        if self.dist.is_main and not args.disable_tqdm:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=total_steps,
                initial=global_step,
                desc=f"Training ({device.type}, {self._compute_dtype(device)})",
                unit="step",
                dynamic_ncols=True,
            )
        window = {"loss": torch.zeros((), device=device), "batches": 0, "rows": 0, "tokens": 0, "padding": 0.0}
        window_start = time.perf_counter()
        grad_norm = torch.zeros(())
        micro = 0
        scale = (
            (lambda t: scaler.scale(t) / args.gradient_accumulation_steps)
            if scaler is not None
            else 1.0 / args.gradient_accumulation_steps
        )
        metrics: dict[str, float] = {}
        last_eval = -1

        with _StopSignal() as stop:
            for epoch in range(start_epoch, num_epochs):
                if epoch != sampler.epoch or resume is None:
                    sampler.set_epoch(epoch)
                resume = None
                for ds_index, rows in sampler:
                    local = split_rows(rows, self.dist.rank, self.dist.world_size)
                    batch = collate(tokenized[ds_index], local, ds_index).to(device)
                    mini = args.mini_batch_size
                    if args.max_tokens_per_batch and batch.packed.num_tokens > args.max_tokens_per_batch:
                        per_row = max(1, batch.packed.num_tokens // max(1, batch.num_rows))
                        mini = min(mini or batch.num_rows, max(1, args.max_tokens_per_batch // per_row))
                    loss = loss_backward(
                        step_model,
                        losses[ds_index],
                        batch,
                        autocast=autocast,
                        loss_scale=scale,
                        mini_batch_size=mini,
                        gather=args.gather_across_devices and self.dist.enabled,
                        sync_context=lambda last, final=micro == args.gradient_accumulation_steps - 1: sync(
                            last and final
                        ),
                    )
                    window["loss"] += loss
                    window["batches"] += 1
                    window["rows"] += len(rows)
                    window["tokens"] += batch.packed.num_tokens * self.dist.world_size
                    window["padding"] += batch.padding_fraction
                    micro += 1
                    if micro < args.gradient_accumulation_steps:
                        continue
                    micro = 0

                    # ---- optimizer step
                    if scaler is not None:
                        scaler.unscale_(optimizer)
                    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                    if scaler is not None:
                        old_scale = scaler.get_scale()
                        scaler.step(optimizer)
                        scaler.update()
                        if scaler.get_scale() < old_scale:  # the step was skipped: inf/NaN gradients
                            skipped_steps += 1
                            consecutive_skips += 1
                            if consecutive_skips >= args.max_consecutive_skipped_steps:
                                raise TrainingError(
                                    f"fp16: {consecutive_skips} consecutive optimizer steps skipped for inf/NaN "
                                    f"gradients (step {global_step + 1}); last checkpoint: {latest_checkpoint(self.output_dir)}"
                                )
                        else:
                            consecutive_skips = 0
                    else:
                        if not torch.isfinite(loss):
                            optimizer.zero_grad(set_to_none=True)
                            raise TrainingError(
                                f"non-finite loss {loss.item()} at step {global_step + 1} (epoch {epoch}, "
                                f"dataset {names[ds_index]!r}, rows {list(rows[:8])}{'...' if len(rows) > 8 else ''}); "
                                f"the last good checkpoint is kept: {latest_checkpoint(self.output_dir)}"
                            )
                        optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    global_step += 1
                    if bar is not None:
                        bar.update(1)

                    # ---- logging, evaluation, checkpoints
                    if global_step % args.logging_steps == 0 or global_step == total_steps:
                        record = self._log_record(
                            window,
                            window_start,
                            optimizer,
                            grad_norm,
                            global_step,
                            steps_per_epoch,
                            device,
                            skipped_steps,
                        )
                        window = {
                            "loss": torch.zeros((), device=device),
                            "batches": 0,
                            "rows": 0,
                            "tokens": 0,
                            "padding": 0.0,
                        }
                        window_start = time.perf_counter()
                        self._log(record, bar)
                    if args.eval_strategy == "steps" and global_step % args.eval_steps == 0:
                        metrics, last_eval = self.evaluate(global_step, global_step / steps_per_epoch), global_step
                    if global_step % args.save_steps == 0:
                        save()
                    if stop.received is not None:
                        path = save()
                        if self.dist.is_main:
                            print(f"kosim: signal {stop.received} received; checkpoint saved to {path}", flush=True)
                        raise SystemExit(128 + stop.received)
                    if global_step >= total_steps:
                        break
                if args.eval_strategy == "epoch":
                    metrics, last_eval = self.evaluate(global_step, global_step / steps_per_epoch), global_step
                if global_step >= total_steps:
                    break
        if bar is not None:
            bar.close()
        if last_eval != global_step and (self.evaluators or self.eval_datasets):
            metrics = self.evaluate(global_step, global_step / steps_per_epoch)
        model.eval()
        if self.dist.is_main:
            self._save_final(metrics)
        return metrics

    # ------------------------------------------------------------------------------------------------ pieces
    def _resume_path(self) -> Path | None:
        value = self.args.resume_from_checkpoint
        if value in (None, False, ""):
            return None
        if value is True or value == "latest":
            path = latest_checkpoint(self.output_dir)
            if path is None:
                raise TrainingError(f"resume_from_checkpoint=True but {self.output_dir} holds no checkpoint")
            return path
        path = Path(value)
        if not path.is_dir():
            raise TrainingError(f"resume_from_checkpoint: {path} is not a checkpoint directory")
        return path

    def _gather_rng(self) -> list[dict[str, Any]]:
        """Every process's RNG state (index = rank), so each one resumes its own dropout stream."""
        state = rng_state()
        if not self.dist.enabled:
            return [state]
        import torch.distributed as dist

        states: list[Any] = [None] * self.dist.world_size
        dist.all_gather_object(states, state)
        return states

    def _log_record(
        self, window, start, optimizer, grad_norm, step, steps_per_epoch, device, skipped
    ) -> dict[str, Any]:
        seconds = max(time.perf_counter() - start, 1e-9)
        batches = max(window["batches"], 1)
        loss = all_reduce_mean(window["loss"] / batches).item()
        return {
            "step": step,
            "epoch": round(step / steps_per_epoch, 4),
            "loss": loss,
            "learning_rate": optimizer.param_groups[0]["lr"],
            "grad_norm": float(grad_norm),
            "samples_per_second": window["rows"] / seconds,
            "tokens_per_second": window["tokens"] / seconds,
            "padding_fraction": window["padding"] / batches,
            "peak_memory_mb": peak_memory_mb(device),
            "skipped_steps": skipped,
        }

    def _log(self, record: dict[str, Any], bar=None) -> None:
        self.log_history.append(record)
        if not self.dist.is_main:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_dir / LOG_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if bar is not None:
            shown = {k: record[k] for k in ("loss", "learning_rate") if k in record}
            shown.update({k: v for k, v in record.items() if k.endswith("spearman_cosine") or k == "validation_loss"})
            bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()})

    @torch.no_grad()
    def validation_loss(self) -> dict[str, float]:
        """Mean loss of each eval dataset (its train dataset's loss when names match, else the first loss)."""
        out: dict[str, float] = {}
        model, device = self.model, self.model.device
        was = model.training
        model.eval()
        try:
            for name, data in self.eval_datasets.items():
                loss_fn = self.losses.get(name, next(iter(self.losses.values())))
                tok = data.tokenize(model.tokenize)
                total, count = torch.zeros((), device=device), 0
                for rows in BatchSampler(tok, self.args.per_device_eval_batch_size, shuffle=False):
                    batch = collate(tok, rows).to(device)
                    with self._autocast(device):
                        emb = model(batch.packed).float()
                    total += loss_fn(list(emb.split(batch.num_rows)), batch.labels, text_ids=batch.text_ids) * len(rows)
                    count += len(rows)
                key = "validation_loss" if len(self.eval_datasets) == 1 else f"{name}_validation_loss"
                out[key] = (total / max(count, 1)).item()
        finally:
            model.train(was)
        return out

    def evaluate(self, step: int = 0, epoch: float = 0.0) -> dict[str, float]:
        """Validation losses and every evaluator's metrics; logged with the step."""
        metrics: dict[str, float] = {}
        if self.dist.is_main:
            metrics.update(self.validation_loss())
            was = self.model.training
            self.model.eval()
            try:
                for evaluator in self.evaluators:
                    metrics.update(evaluator(self.model))
            finally:
                self.model.train(was)
        if self.dist.enabled:
            import torch.distributed as dist

            shared = [metrics]
            dist.broadcast_object_list(shared, src=0)
            metrics = shared[0]
        if metrics:
            self._log({"step": step, "epoch": round(epoch, 4), **metrics})
        return metrics

    def _save_final(self, metrics: dict[str, float]) -> None:
        from kosim.card import build_model_card

        card = build_model_card(
            self.model,
            train_datasets=self.train_datasets,
            losses=self.losses,
            args=self.args,
            log_history=self.log_history,
            metrics=metrics,
            evaluators=self.evaluators,
            base_model=self.base_model,
        )
        self.model.save(self.output_dir, model_card=card)
