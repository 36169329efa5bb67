"""sentence-transformers' legacy `model.fit(train_objectives=[(DataLoader, loss), ...])`, on kosim's Trainer.

What sentence-transformers 3+ does, and so what this does:

    each DataLoader (of InputExample) is iterated once, as it is (a shuffling loader draws its order from torch's
    global RNG, as in sentence-transformers), into a dataset `_dataset_<i>`: columns `sentence_0, sentence_1, ...`
    and a `label` column unless every label is 0
    -> the trainer reshuffles every epoch (`seed` 42) with the loaders' batch size; several objectives take turns
       (round robin, stopping with the smallest), each with its own loss
    -> AdamW (`optimizer_params`: lr, betas, eps), `weight_decay` except on biases and LayerNorm, gradient clipping
       at `max_grad_norm`, and the learning-rate schedule sized as sentence-transformers sizes it:
       `min(len(dataset) // batch_size) * epochs * objectives` steps
    -> the final model in `output_path` (with an evaluator and `save_best_model`: the best evaluated model);
       checkpoints every `checkpoint_save_steps` in `checkpoint_path`

Differences, said here rather than hidden: with `evaluation_steps` the evaluator runs every `evaluation_steps`
and at the end (sentence-transformers also runs it at each epoch's end); with several objectives the batch orders
differ from sentence-transformers' (its samplers share one generator; kosim seeds each dataset's own), while one
objective gets the same batches. Unsupported arguments (another optimizer, a cosine schedule, ...) raise.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from torch import nn

from kosim.config.arguments import TrainingArguments
from kosim.data.datasets import ColumnDataset
from kosim.model import SentenceEncoder
from kosim.st.losses import guide_model
from kosim.st.trainer import _merged_options
from kosim.training.schedule import lr_factor
from kosim.training.trainer import Trainer
from kosim.utils.log import log

__all__ = ["fit", "objective_dataset"]

SCHEDULERS = {"constantlr": "constant", "warmupconstant": "constant_with_warmup", "warmuplinear": "linear"}
_OPTIMIZER_PARAMS = {"lr": "learning_rate", "eps": "adam_epsilon"}
_NEVER = 2**62  # a step interval no run reaches


def objective_dataset(loader: Iterable, name: str) -> ColumnDataset:
    """The rows of one DataLoader of InputExamples, in the order one pass yields them (sentence-transformers'
    conversion): columns `sentence_0..`, labels unless every label is 0."""
    collate = getattr(loader, "collate_fn", None)
    if collate is not None:
        loader.collate_fn = _identity  # the raw InputExamples, not tensors
    try:
        examples = [example for batch in loader for example in batch]
    finally:
        if collate is not None:
            loader.collate_fn = collate
    if not examples:
        raise ValueError(f"fit: the DataLoader of objective {name!r} yields no examples")
    widths = {len(getattr(e, "texts", ())) for e in examples}
    if len(widths) != 1 or 0 in widths:
        raise ValueError(f"fit: objective {name!r}: every InputExample needs the same number of texts, got {widths}")
    columns = {f"sentence_{i}": [e.texts[i] for e in examples] for i in range(widths.pop())}
    labels = [e.label for e in examples]
    return ColumnDataset(columns, None if all(label == 0 for label in labels) else labels, name=name)


def _identity(batch: list) -> list:
    return batch


def _batch_size(loader: Any, name: str) -> int:
    size = getattr(loader, "batch_size", None) or getattr(getattr(loader, "batch_sampler", None), "batch_size", None)
    if size is None:
        raise ValueError(f"fit: the DataLoader of objective {name!r} has no batch_size")
    return int(size)


class _FitTrainer(Trainer):
    """kosim's Trainer with fit's two extras: the schedule sized as sentence-transformers sizes it, and the best
    model saved (and `callback(score, epoch, steps)` called) at each evaluation."""

    def __init__(self, *args: Any, schedule: tuple[int, int, str], best_path: str | None, callback, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.schedule, self.best_path, self.callback, self.best = schedule, best_path, callback, None

    def _setup(self):
        s = super()._setup()
        total, warmup, kind = self.schedule
        scheduler = s.scheduler
        for group, base in zip(s.optimizer.param_groups, scheduler.base_lrs):  # (a resumed run keeps its step)
            group["lr"] = base * lr_factor(scheduler.last_epoch, total, warmup, kind)
        scheduler.lr_lambdas = [lambda step: lr_factor(step, total, warmup, kind)] * len(scheduler.lr_lambdas)
        scheduler._last_lr = [g["lr"] for g in s.optimizer.param_groups]
        return s

    def evaluate(self, step: int = 0, epoch: float = 0.0) -> dict[str, float]:
        metrics = super().evaluate(step, epoch)
        if not self.evaluators or not self.dist.is_main:
            return metrics
        evaluator = self.evaluators[0]
        key = getattr(evaluator, "primary_metric", None)
        key = key if key in metrics else next((k for k in metrics if key and k.endswith(key)), None)
        if key is None:
            raise ValueError(f"fit: the evaluator names no primary_metric among its metrics {sorted(metrics)}")
        score = metrics[key]
        if self.best_path is not None:
            better = getattr(evaluator, "greater_is_better", True)
            if self.best is None or (score > self.best if better else score < self.best):
                self.best = score
                SentenceEncoder.save(self.model, self.best_path)
        if self.callback is not None:
            self.callback(score, epoch, step)
        return metrics


def _optimizer_arguments(optimizer_class: type | None, optimizer_params: dict[str, Any] | None) -> dict[str, Any]:
    """TrainingArguments for fit's AdamW settings (`lr`, `betas`, `eps`; anything else is refused)."""
    import torch

    if optimizer_class not in (None, torch.optim.AdamW):
        raise ValueError(f"fit: optimizer_class={optimizer_class!r} is not supported; kosim trains with AdamW")
    out: dict[str, Any] = {"learning_rate": 2e-5}
    for key, value in (optimizer_params or {"lr": 2e-5}).items():
        if key == "betas":
            out["adam_beta1"], out["adam_beta2"] = (float(b) for b in value)
        elif key in _OPTIMIZER_PARAMS:
            out[_OPTIMIZER_PARAMS[key]] = value
        else:
            raise ValueError(f"fit: optimizer_params[{key!r}] is not supported (only lr, betas, eps)")
    return out


def _objectives(train_objectives: Iterable[tuple[Any, nn.Module]]):
    """(batch size, {name: dataset}, {name: loss}) of the objectives, named `_dataset_1, _dataset_2, ...`."""
    objectives = list(train_objectives)
    if not objectives:
        raise ValueError("fit: train_objectives is empty")
    names = [f"_dataset_{i}" for i in range(1, len(objectives) + 1)]
    sizes = {_batch_size(loader, name) for (loader, _), name in zip(objectives, names)}
    if len(sizes) > 1:
        raise ValueError(f"fit: the DataLoaders have different batch sizes {sorted(sizes)}; kosim trains with one")
    datasets = {name: objective_dataset(loader, name) for (loader, _), name in zip(objectives, names)}
    return sizes.pop(), datasets, {name: loss for (_, loss), name in zip(objectives, names)}


def _lengths(steps_per_epoch: int | None, epochs: int, batch_size: int, datasets: dict) -> tuple[int, int]:
    """(max_steps, steps the schedule is sized for), as sentence-transformers' fit computes them: the schedule
    counts `min(len // batch_size)` steps an epoch per objective, whatever the number of batches trained."""
    max_steps = -1
    if steps_per_epoch is not None and steps_per_epoch > 0:
        if epochs == 1:
            max_steps = steps_per_epoch
        else:
            log("fit: steps_per_epoch with epochs > 1 is ignored (as in sentence-transformers): full epochs train")
            steps_per_epoch = None
    if not steps_per_epoch:
        steps_per_epoch = min(len(d) // batch_size for d in datasets.values())
    return max_steps, max_steps if max_steps > 0 else int(steps_per_epoch * epochs) * len(datasets)


def fit(
    model: SentenceEncoder,
    train_objectives: Iterable[tuple[Any, nn.Module]],
    evaluator: Callable | None = None,
    epochs: int = 1,
    steps_per_epoch: int | None = None,
    scheduler: str = "WarmupLinear",
    warmup_steps: int = 10000,
    optimizer_class: type | None = None,
    optimizer_params: dict[str, Any] | None = None,
    weight_decay: float = 0.01,
    evaluation_steps: int = 0,
    output_path: str | None = None,
    save_best_model: bool = True,
    max_grad_norm: float = 1,
    use_amp: bool = False,
    callback: Callable[[float, float, int], None] | None = None,
    show_progress_bar: bool = True,
    checkpoint_path: str | None = None,
    checkpoint_save_steps: int = 500,
    checkpoint_save_total_limit: int = 0,
    resume_from_checkpoint: bool = False,
) -> None:
    """sentence-transformers' `fit` (see the module docstring); trains `model` in place."""
    lr_args = _optimizer_arguments(optimizer_class, optimizer_params)
    kind = SCHEDULERS.get(str(scheduler).lower())
    if kind is None:
        raise ValueError(f"fit: scheduler={scheduler!r} is not supported; kosim.st has {sorted(SCHEDULERS)}")
    batch_size, datasets, losses = _objectives(train_objectives)
    max_steps, schedule_total = _lengths(steps_per_epoch, epochs, batch_size, datasets)

    with tempfile.TemporaryDirectory(prefix="kosim-fit-") as scratch:
        run_dir = checkpoint_path or (output_path if evaluator is None and output_path else scratch)
        args = dict(
            output_dir=str(run_dir),
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=batch_size,
            num_train_epochs=float(epochs),
            max_steps=max_steps,
            weight_decay=weight_decay,
            max_grad_norm=float(max_grad_norm),
            fp16=bool(use_amp),
            disable_tqdm=not show_progress_bar,
            multi_dataset_batch_sampler="round_robin",
            lr_scheduler_type=kind,
            warmup_steps=int(warmup_steps),
            eval_strategy="no" if evaluator is None else "steps" if evaluation_steps > 0 else "epoch",
            eval_steps=evaluation_steps if evaluation_steps > 0 else None,
            save_steps=checkpoint_save_steps if checkpoint_path else _NEVER,
            save_total_limit=checkpoint_save_total_limit or None,
            resume_from_checkpoint=True if checkpoint_path and resume_from_checkpoint else None,
            overwrite_output_dir=not (checkpoint_path and resume_from_checkpoint),
            **lr_args,
            **_merged_options(losses),
        )
        guides = {n: g for n, g in ((n, guide_model(loss)) for n, loss in losses.items()) if g is not None}
        trainer = _FitTrainer(
            model,
            TrainingArguments(**args),
            datasets,
            losses,
            evaluator=evaluator,
            guide=guides or None,
            schedule=(schedule_total, int(warmup_steps), kind),
            best_path=output_path if evaluator is not None and save_best_model else None,
            callback=callback,
        )
        trainer.train()
        if output_path is not None and evaluator is None and Path(run_dir) != Path(output_path):
            SentenceEncoder.save(model, output_path)
