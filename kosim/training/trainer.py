"""Trainer: the AdamW training loop, written out top to bottom in `Trainer.train`.

    set-up (kosim.training.state): tokenize every dataset once -> samplers -> AdamW, schedule, GradScaler
    resume (kosim.training.checkpoint): the newest checkpoint that verifies, if asked
    for each step: collate a packed batch -> one forward for all columns -> loss -> backward   (step.loss_backward)
                   -> unscale, clip, refuse non-finite gradients, optimizer step                (step.optimizer_step)
                   -> log / evaluate / checkpoint
    final evaluation -> the model and its card in output_dir

Several datasets each train with their own loss; batches come round_robin or proportional. Multi-process runs
(torchrun) wrap the model in DistributedDataParallel; each process trains on its share of every global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from kosim.config.arguments import TrainingArguments
from kosim.config.prompts import run_prompts
from kosim.data.collate import collate, split_rows
from kosim.data.columns import TrainData, named_datasets
from kosim.data.datasets import ColumnDataset
from kosim.embedding_memo import TokenCache
from kosim.model import SentenceEncoder
from kosim.precision import autocast as autocast_context
from kosim.training.checkpoint import (
    checkpoint_state,
    gather_rng_states,
    latest_checkpoint,
    load_resume_checkpoint,
    remove_partial_checkpoints,
    restore_state,
    save_checkpoint,
)
from kosim.training.distributed import DistInfo, setup_from_env
from kosim.training.errors import TrainingError
from kosim.training.eval_round import validation_losses
from kosim.training.loss_setup import (
    Guide,
    bind_guides,
    card_notes,
    load_loss_states,
    loss_states,
    model_sources,
    resolve_guides,
    save_loss_heads,
)
from kosim.training.run_dir import append_log, check_run_config, rewrite_log
from kosim.training.signals import StopSignal
from kosim.training.state import (
    TrainState,
    build_state,
    compute_dtype,
    decay_groups,
    set_seed,
    warn_label_ranges,
)
from kosim.training.stats import RunningStats, peak_memory_mb
from kosim.training.step import (
    accumulation_scale,
    ddp_sync,
    loss_backward,
    mini_batch_rows,
    optimizer_step,
)
from kosim.utils.device import resolve_device
from kosim.utils.log import log

__all__ = ["Trainer", "TrainingError", "decay_groups", "peak_memory_mb", "set_seed"]

Evaluator = Callable[[SentenceEncoder], dict[str, float]]


def _named_datasets(data: TrainData | None) -> dict[str, ColumnDataset]:
    """Datasets by name; a single dataset is called "train" (the name losses and eval datasets match on).

    A ColumnDataset, a `datasets.Dataset`, a `DatasetDict`, a `{column: values}` dict or a dict of datasets
    (kosim.data.columns: a `label` / `score` column holds the labels, the other columns are the inputs, in order).
    """
    return named_datasets(data)


class _MicroBatch(NamedTuple):
    """What the error message of a refused optimizer step names about one of its micro-batches."""

    loss: Tensor
    dataset: str
    rows: list[int]


class Trainer:
    """Train a SentenceEncoder on one or more column datasets, each with its own loss.

    ``guide``: the frozen guide model of GISTEmbedLoss (one for every GIST loss, or ``{dataset: model}``); it
    encodes each distinct text once at set-up. ``guide_source`` names it on the model card (a path or hub id).
    ``teacher`` / ``teacher_source``: the same for MSELoss, whose targets are then the teacher's embeddings of each
    row's first text (the teacher's width must be the student's).
    Losses with parameters (SoftmaxLoss) are trained with the model, checkpointed, and saved beside it.
    """

    def __init__(
        self,
        model: SentenceEncoder,
        args: TrainingArguments,
        train_dataset: TrainData,
        loss: nn.Module | Mapping[str, nn.Module],
        eval_dataset: TrainData | None = None,
        evaluator: Evaluator | Sequence[Evaluator] | None = None,
        base_model: str | None = None,
        guide: Guide = None,
        guide_source: str | Mapping[str, str] | None = None,
        teacher: Guide = None,
        teacher_source: str | Mapping[str, str] | None = None,
    ):
        self.model = model
        self.args = args
        self.train_datasets = _named_datasets(train_dataset)
        if not self.train_datasets:
            raise ValueError("train_dataset is empty")
        losses = loss if isinstance(loss, Mapping) else {name: loss for name in self.train_datasets}
        missing = [n for n in self.train_datasets if n not in losses]
        if missing:
            raise ValueError(f"no loss for train dataset(s) {missing}; losses are given for {sorted(losses)}")
        self.losses = {n: losses[n] for n in self.train_datasets}
        self.guides = resolve_guides(self.losses, guide, teacher, model)  # GIST guides and MSELoss teachers
        self.guide_sources = model_sources(self.losses, self.guides, guide_source, teacher_source)
        self._eval_losses: dict[str, nn.Module] = {}  # eval dataset -> its loss (GIST: bound to its own table)
        self.eval_datasets = _named_datasets(eval_dataset)
        self.evaluators = (
            [] if evaluator is None else list(evaluator) if isinstance(evaluator, Sequence) else [evaluator]
        )
        self.base_model = base_model
        # {dataset: {column: prompt}}, names checked here; the model saves its prompts (encode_query uses them)
        self.prompts, saved_prompts = run_prompts(
            args.prompts,
            {n: d.column_names for n, d in self.train_datasets.items()},
            {n: d.column_names for n, d in self.eval_datasets.items()},
        )
        self.model.prompts.update(saved_prompts)
        self.log_history: list[dict[str, Any]] = []
        self._token_cache = TokenCache()  # evaluation rounds' token ids, kept for the run (they need no weights)
        self.dist = DistInfo()
        self.output_dir = Path(args.output_dir)

    # ------------------------------------------------------------------------------------------------ train
    def train(self) -> dict[str, float]:
        """Run training to the end (or to a stop signal); returns the final evaluation metrics."""
        args, s = self.args, self._setup()
        world = self.dist.world_size
        autocast = autocast_context(s.device, s.dtype)
        loss_scale = accumulation_scale(s.scaler, args.gradient_accumulation_steps)
        gather = args.gather_across_devices and self.dist.enabled
        parameters = list(s.model.parameters()) + s.loss_parameters
        bar = self._progress_bar(s)
        stats = RunningStats(s.device)
        micro_batches: list[_MicroBatch] = []  # those of the optimizer step being accumulated
        grad_norm = torch.zeros(())
        metrics: dict[str, float] = {}
        last_eval = -1

        with StopSignal() as stop:
            for epoch in range(s.sampler.epoch, s.num_epochs):
                if s.finished:  # (a finished run that is resumed trains nothing)
                    break
                s.sampler.set_epoch(epoch)  # a resumed epoch continues where its checkpoint stopped
                for ds_index, rows in s.sampler:
                    local_rows = split_rows(rows, self.dist.rank, world)
                    batch = collate(s.tokenized[ds_index], local_rows, ds_index).to(s.device)
                    last_micro_batch = len(micro_batches) == args.gradient_accumulation_steps - 1
                    loss = loss_backward(
                        s.step_model,
                        s.losses[ds_index],
                        batch,
                        autocast=autocast,
                        loss_scale=loss_scale,
                        mini_batch_size=mini_batch_rows(batch, args.mini_batch_size, args.max_tokens_per_batch),
                        gather=gather,
                        sync_context=ddp_sync(s.step_model, self.dist.enabled, last_micro_batch),
                    )
                    stats.add(loss, len(rows), batch.packed.num_tokens * world, batch.padding_fraction)
                    micro_batches.append(_MicroBatch(loss, s.names[ds_index], rows))
                    if not last_micro_batch:
                        continue

                    # ---- optimizer step
                    grad_norm, refused = optimizer_step(s.optimizer, s.scaler, parameters, args.max_grad_norm, s.skips)
                    if refused:
                        raise TrainingError(self._refused_step_message(s, micro_batches, grad_norm, epoch))
                    if s.skips.exhausted:
                        raise TrainingError(
                            f"fp16: {s.skips.consecutive} consecutive optimizer steps skipped for inf/NaN gradients "
                            f"(step {s.global_step + 1}); last checkpoint: {latest_checkpoint(self.output_dir)}"
                        )
                    s.scheduler.step()
                    s.optimizer.zero_grad(set_to_none=True)
                    s.global_step += 1
                    micro_batches.clear()
                    if bar is not None:
                        bar.update(1)

                    # ---- logging, evaluation, checkpoints
                    step, epochs_done = s.global_step, s.global_step / s.steps_per_epoch
                    if step % args.logging_steps == 0 or s.finished:
                        lr = s.optimizer.param_groups[0]["lr"]
                        self._log(stats.record(step, s.steps_per_epoch, lr, grad_norm, s.skipped_steps), bar)
                    if args.eval_strategy == "steps" and step % args.eval_steps == 0:
                        metrics, last_eval = self.evaluate(step, epochs_done), step
                    if step % args.save_steps == 0:
                        self._save_checkpoint(s)
                    if stop.received is not None:
                        self._stop(s, stop.received)
                    if s.finished:
                        break
                if args.eval_strategy == "epoch":
                    metrics, last_eval = self.evaluate(s.global_step, s.global_step / s.steps_per_epoch), s.global_step
        if bar is not None:
            bar.close()
        if last_eval != s.global_step and (self.evaluators or self.eval_datasets):
            metrics = self.evaluate(s.global_step, s.global_step / s.steps_per_epoch)
        s.model.eval()
        self._check_finite_weights(s, "the final model")
        if self.dist.is_main:
            self._save_final(metrics)
        return metrics

    # ------------------------------------------------------------------------------------------------ set-up
    def _setup(self) -> TrainState:
        """The run's state, checked before anything is written, and restored from a checkpoint when resuming."""
        self.dist = setup_from_env()
        device = resolve_device(self.args.device)
        compute_dtype(self.args, device)  # fp16 without CUDA is refused before run_config.json is written
        self._check_output_dir()
        if self.dist.is_main:
            for path in remove_partial_checkpoints(self.output_dir):
                log(f"removed {path.name}, a checkpoint whose write was interrupted")
        warn_label_ranges(self.train_datasets, self.losses)
        s = build_state(
            self.model, self.args, self.train_datasets, self.losses, device, self.dist, self.prompts, self.guides
        )
        s.log_history = self.log_history
        resumed = load_resume_checkpoint(
            self.output_dir, self.args.resume_from_checkpoint, log if self.dist.is_main else _silent
        )
        if resumed is not None:
            path, weights, state = resumed
            s.model.load_state_dict(weights)
            load_loss_states(self.losses, state.get("losses"), path)  # before the optimizer state
            restore_state(s, state, self.dist.rank)
            self.log_history = s.log_history
            if self.dist.is_main:
                rewrite_log(self.output_dir, self.log_history)
                if s.finished:
                    log(f"{path.name} ends the run (step {s.global_step} of {s.total_steps}): nothing left to train")
        elif self.args.resume_from_checkpoint and self.dist.is_main:
            rewrite_log(self.output_dir, [])  # starting again: drop what a run killed before its first save logged
        return s

    def _check_output_dir(self) -> None:
        """Refuse to mix two different runs in one output directory (the directory's spelling does not count)."""
        check_run_config(self.output_dir, self.args, write=self.dist.is_main)

    def _progress_bar(self, s: TrainState):
        if not self.dist.is_main or self.args.disable_tqdm:
            return None
        from tqdm.auto import tqdm

        desc = f"Training ({s.device.type}, {s.dtype})"
        return tqdm(total=s.total_steps, initial=s.global_step, desc=desc, unit="step", dynamic_ncols=True)

    # ------------------------------------------------------------------------------------------------ pieces
    def _refused_step_message(
        self, s: TrainState, micro_batches: list[_MicroBatch], grad_norm: Tensor, epoch: int
    ) -> str:
        bad = next((m for m in micro_batches if not torch.isfinite(m.loss)), None)
        shown = bad or micro_batches[-1]
        what = f"non-finite loss {bad.loss.item()}" if bad else f"non-finite gradient norm {float(grad_norm)}"
        rows = f"{list(shown.rows[:8])}{'...' if len(shown.rows) > 8 else ''}"
        finite_loss = "" if bad else f"; its loss, {shown.loss.item():.4g}, is finite: lower the learning_rate?"
        return (
            f"{what} at step {s.global_step + 1} (epoch {epoch}, dataset {shown.dataset!r}, rows {rows}{finite_loss}); "
            f"the step was refused and no weight changed; the last good checkpoint is kept: "
            f"{latest_checkpoint(self.output_dir)}"
        )

    def _check_finite_weights(self, s: TrainState, what: str) -> None:
        """Never save non-finite weights: a weight that overflowed stops the run, naming the last good checkpoint."""
        if torch.stack([torch.isfinite(p).all() for p in s.model.parameters()]).all():
            return
        name = next(n for n, p in s.model.named_parameters() if not torch.isfinite(p).all())
        raise TrainingError(
            f"weight {name} is not finite after step {s.global_step}, so {what} is not saved (lower the "
            f"learning_rate?); the last good checkpoint is kept: {latest_checkpoint(self.output_dir)}"
        )

    def _save_checkpoint(self, s: TrainState) -> Path | None:
        """`checkpoint-<step>`, written by the main process (every process takes part in gathering RNG states)."""
        self._check_finite_weights(s, f"checkpoint-{s.global_step}")
        state = {**checkpoint_state(s, gather_rng_states(self.dist)), "losses": loss_states(self.losses)}
        if not self.dist.is_main:
            return None
        return save_checkpoint(self.output_dir, s.global_step, s.model, state, keep=self.args.save_total_limit)

    def _stop(self, s: TrainState, signum: int):
        """After SIGINT/SIGTERM: checkpoint, say so on stderr, exit with 128 + the signal number."""
        path = self._save_checkpoint(s)
        if self.dist.is_main:
            log(f"signal {signum} received; checkpoint saved to {path}")
        raise SystemExit(128 + signum)

    def _log(self, record: dict[str, Any], bar=None) -> None:
        self.log_history.append(record)
        if not self.dist.is_main:
            return
        append_log(self.output_dir, record)
        if bar is not None:
            shown = {k: record[k] for k in ("loss", "learning_rate") if k in record}
            shown.update({k: v for k, v in record.items() if k.endswith("spearman_cosine") or k == "validation_loss"})
            bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()})

    def validation_loss(self) -> dict[str, float]:
        """Mean loss of each eval dataset (its train dataset's loss when names match, else the first loss), from
        embeddings of the model's embedding memo (kosim.training.eval_round)."""
        device = self.model.device
        dtype = compute_dtype(self.args, device)
        batch = self.args.per_device_eval_batch_size
        return validation_losses(self.model, self.eval_datasets, self._eval_loss, self.prompts, batch, dtype)

    def _eval_loss(self, name: str, data: ColumnDataset, device: torch.device) -> nn.Module:
        """The loss of an eval dataset: its train dataset's (same name, else the first), on ``device``; a GIST loss
        is bound to a guide table of the eval dataset's own texts, built at first use."""
        if name not in self._eval_losses:
            source = name if name in self.losses else next(iter(self.losses))
            loss = self.losses[source].to(device)
            guides = {name: self.guides[source]} if source in self.guides else {}
            batch = self.args.per_device_eval_batch_size
            self._eval_losses[name] = bind_guides(
                [loss], [name], {name: data}, guides, device, self.model.max_seq_length, batch, False, self.prompts
            )[0]
        return self._eval_losses[name]

    def eval_round(self, evaluators: list | None = None) -> dict[str, float]:
        """Validation losses and the metrics of `evaluators` (default: the Trainer's), in this process.

        One round, one embedding memo (`SentenceEncoder.embedding_memo`), closed before training goes on: every
        distinct text is embedded once for the validation losses and all evaluators. The evaluators run first, so
        the first one's embeddings are computed exactly as without the memo (its metrics are the same numbers);
        the validation losses then read theirs. Keys: validation losses first, then the evaluators'.
        """
        was = self.model.training
        self.model.eval()
        try:
            with self.model.embedding_memo(self._token_cache):
                evaluated: dict[str, float] = {}
                for evaluator in self.evaluators if evaluators is None else evaluators:
                    evaluated.update(evaluator(self.model))
                return {**self.validation_loss(), **evaluated}
        finally:
            self.model.train(was)

    def evaluate(self, step: int = 0, epoch: float = 0.0) -> dict[str, float]:
        """`eval_round`'s metrics, logged with the step. Under DDP the round runs on rank 0 (its memo is rank 0's
        only) and the metrics are broadcast."""
        metrics = self.eval_round() if self.dist.is_main else {}
        if self.dist.enabled:
            import torch.distributed as dist

            shared = [metrics]
            dist.broadcast_object_list(shared, src=0)
            metrics = shared[0]
        if metrics:
            self._log({"step": step, "epoch": round(epoch, 4), **metrics})
        return metrics

    def _save_final(self, metrics: dict[str, float]) -> None:
        from dataclasses import replace

        from kosim.card import build_model_card

        notes = card_notes(self.losses, self.guides, self.guide_sources)
        card = build_model_card(
            self.model,
            train_datasets=self.train_datasets,
            losses=self.losses,
            args=replace(self.args, card_notes={**self.args.card_notes, **notes}) if notes else self.args,
            log_history=self.log_history,
            metrics=metrics,
            evaluators=self.evaluators,
            base_model=self.base_model,
        )
        SentenceEncoder.save(self.model, self.output_dir, model_card=card)  # kosim's save, also for a kosim.st model
        save_loss_heads(self.losses, self.output_dir)


def _silent(message: str) -> None:
    """A logger for the processes other than rank 0."""
