"""`SentenceTransformerTrainer`: sentence-transformers' trainer constructor and `train()`, running kosim's Trainer.

    SentenceTransformerTrainer(model, args, train_dataset, eval_dataset, loss, evaluator)
      -> datasets: datasets.Dataset / DatasetDict / {column: values} -> ColumnDatasets (kosim.data.columns)
      -> losses: one for every dataset, or {dataset name: loss} (sentence-transformers' rule); a loss given as a
         function of the model (e.g. the loss class) is called with it; none: CoSENTLoss, as in sentence-transformers
      -> what the losses ask of the trainer (kosim.st.losses.trainer_options / guide_model): gradient caching,
         cross-process gathering, a GIST guide
      -> kosim's TrainingArguments (args.training_arguments()) -> kosim.training.Trainer
    train() -> TrainOutput(global_step, training_loss, metrics), as transformers' Trainer returns

The transformers-only arguments (callbacks, optimizers, compute_metrics, data_collator, model_init, ...) raise a
ValueError naming them when given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from torch import nn

from kosim.data.columns import TrainData, is_hf_dataset_dict, named_datasets
from kosim.model import SentenceEncoder
from kosim.st.losses import CoSENTLoss, guide_model, trainer_options
from kosim.st.training_args import SentenceTransformerTrainingArguments
from kosim.training.trainer import Trainer

__all__ = ["SentenceTransformerTrainer", "TrainOutput"]

# transformers' Trainer arguments kosim has no equivalent for, with the value that means "not used"
_UNSUPPORTED = {
    "data_collator": None,
    "tokenizer": None,
    "processing_class": None,
    "model_init": None,
    "compute_metrics": None,
    "callbacks": None,
    "optimizers": (None, None),
    "optimizer_cls_and_kwargs": None,
    "preprocess_logits_for_metrics": None,
}


class TrainOutput(NamedTuple):
    """What `train()` returns, as transformers' `TrainOutput`: steps done, mean training loss, run metrics."""

    global_step: int
    training_loss: float
    metrics: dict[str, float]


def _prepare_loss(loss: Any, model: SentenceEncoder, name: str) -> nn.Module:
    """A loss module; a function of the model (e.g. `losses.MultipleNegativesRankingLoss`) is called with it."""
    if isinstance(loss, nn.Module):
        return loss
    if callable(loss):
        return _prepare_loss(loss(model), model, name)
    raise TypeError(f"loss for {name!r} must be a loss module or a function of the model, got {type(loss).__name__}")


def _merged_options(losses: Mapping[str, nn.Module]) -> dict[str, Any]:
    """The TrainingArguments the losses ask for; kosim's are run-wide, so two losses asking differently is an error.

    Gradient caching (`mini_batch_size`) gives every loss the same gradients, so one cached loss caches the run;
    cross-process gathering changes a loss's negatives, so all losses must agree on it.
    """
    asked = {name: trainer_options(loss) for name, loss in losses.items()}
    merged: dict[str, Any] = {}
    for key in sorted({k for options in asked.values() for k in options}):
        values = {
            name: options.get(key, False if key == "gather_across_devices" else None) for name, options in asked.items()
        }
        distinct = {v for v in values.values() if v is not None}
        if len(distinct) > 1:
            raise ValueError(f"the losses ask for different {key} ({values}); kosim applies one value to the whole run")
        merged[key] = distinct.pop()
    return merged


class SentenceTransformerTrainer:
    """sentence-transformers' `SentenceTransformerTrainer(model, args, train_dataset, eval_dataset, loss,
    evaluator)` on kosim's Trainer (see the module docstring). `self.trainer` is kosim's Trainer."""

    def __init__(
        self,
        model: SentenceEncoder | None = None,
        args: SentenceTransformerTrainingArguments | None = None,
        train_dataset: TrainData | None = None,
        eval_dataset: TrainData | None = None,
        loss: nn.Module | Callable | Mapping[str, nn.Module | Callable] | None = None,
        evaluator: Callable | Sequence[Callable] | None = None,
        **kwargs: Any,
    ) -> None:
        for name, value in kwargs.items():
            if name not in _UNSUPPORTED:
                raise TypeError(f"SentenceTransformerTrainer got an unexpected argument {name!r}")
            if value is not _UNSUPPORTED[name] and value != _UNSUPPORTED[name] and value != []:
                raise ValueError(f"SentenceTransformerTrainer: {name}=... is not supported by kosim.st")
        if not isinstance(model, SentenceEncoder):
            raise TypeError(f"SentenceTransformerTrainer needs the model to train, got {type(model).__name__}")
        if args is None:
            args = SentenceTransformerTrainingArguments(output_dir="tmp_trainer")
        if not isinstance(args, SentenceTransformerTrainingArguments):
            raise TypeError(f"args must be a SentenceTransformerTrainingArguments, got {type(args).__name__}")
        if train_dataset is None:
            raise ValueError("SentenceTransformerTrainer: kosim.st needs a train_dataset")
        self.model, self.args, self.evaluator = model, args, evaluator
        train = named_datasets(train_dataset)
        evaluation = named_datasets(eval_dataset)
        self.loss = self._losses(loss, train_dataset, eval_dataset, list(train))
        strategy = getattr(args.eval_strategy, "value", args.eval_strategy)
        if strategy != "no" and not evaluation and evaluator is None:
            raise ValueError(
                f"args.eval_strategy is {strategy!r} but there is no eval_dataset or evaluator; provide one "
                "or set eval_strategy='no'"
            )
        losses = {n: self.loss[n] for n in train} if isinstance(self.loss, dict) else dict.fromkeys(train, self.loss)
        self._options = _merged_options(losses)
        guides = {name: g for name, g in ((n, guide_model(loss)) for n, loss in losses.items()) if g is not None}
        self.trainer = Trainer(
            model,
            self._kosim_args(),
            train,
            losses,
            eval_dataset=evaluation or None,
            evaluator=evaluator,
            guide=guides or None,
        )

    def _losses(
        self, loss: Any, train_dataset: Any, eval_dataset: Any, train_names: list[str]
    ) -> nn.Module | dict[str, nn.Module]:
        """One loss module, or {dataset: loss} (sentence-transformers' rule: the datasets must then be dicts of
        datasets, each named in the loss dict)."""
        if loss is None:
            return CoSENTLoss(self.model)
        if not isinstance(loss, Mapping):
            return _prepare_loss(loss, self.model, "the datasets")
        for kind, data in (("train", train_dataset), ("eval", eval_dataset)):
            if data is None:
                continue
            if not is_hf_dataset_dict(data):
                raise ValueError(f"loss is a dict, so the {kind}_dataset must be a DatasetDict (a dict of datasets)")
            missing = sorted(set(data) - set(loss))
            if missing:
                raise ValueError(f"loss is a dict without an entry for {kind} dataset(s) {missing}")
            if kind == "eval" and set(data) - set(train_names):
                raise ValueError(
                    f"eval dataset(s) {sorted(set(data) - set(train_names))}: kosim.st evaluates an eval dataset with "
                    "the loss of the train dataset of the same name; name each eval dataset after a train dataset"
                )
        return {name: _prepare_loss(fn, self.model, name) for name, fn in loss.items()}

    def _kosim_args(self, resume: str | bool | None = None):
        """kosim's TrainingArguments: the args' mapping plus what the losses ask for; a fresh run may reuse its
        output_dir as with transformers (kosim otherwise refuses a directory holding another run)."""
        return self.args.training_arguments(
            **self._options, resume_from_checkpoint=resume, overwrite_output_dir=not resume
        )

    def train(
        self, resume_from_checkpoint: str | bool | None = None, trial: Any = None, ignore_keys_for_eval: Any = None
    ) -> TrainOutput:
        """Train to the end; `resume_from_checkpoint` (True: the newest checkpoint in output_dir, or a path)
        continues an interrupted run exactly. Returns transformers' TrainOutput."""
        if trial is not None or ignore_keys_for_eval is not None:
            raise ValueError("train(): trial / ignore_keys_for_eval are not supported by kosim.st")
        self.trainer.args = self._kosim_args(resume_from_checkpoint or None)
        start = time.perf_counter()
        self.trainer.train()
        runtime = time.perf_counter() - start
        steps, loss, epoch = _summary(self.trainer.log_history)
        args = self.trainer.args
        samples = (
            steps * args.per_device_train_batch_size * args.gradient_accumulation_steps * self.trainer.dist.world_size
        )
        metrics = {
            "train_runtime": round(runtime, 4),
            "train_samples_per_second": round(samples / max(runtime, 1e-9), 3),
            "train_steps_per_second": round(steps / max(runtime, 1e-9), 3),
            "train_loss": loss,
            "epoch": epoch,
        }
        return TrainOutput(steps, loss, metrics)

    def evaluate(self, eval_dataset: TrainData | None = None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Validation losses and evaluator metrics, named as transformers does (`eval_loss`, `eval_<name>_loss`,
        `eval_<metric>`)."""
        trainer = self.trainer
        if eval_dataset is not None:
            trainer = _with_eval_datasets(trainer, named_datasets(eval_dataset))
        metrics = trainer.evaluate(*_last_step(self.trainer.log_history))
        out = {}
        for key, value in metrics.items():
            if key == "validation_loss":
                key = "loss"
            elif key.endswith("_validation_loss"):
                key = key[: -len("_validation_loss")] + "_loss"
            out[f"{metric_key_prefix}_{key}"] = value
        return out


def _with_eval_datasets(trainer: Trainer, datasets: dict) -> Trainer:
    """A shallow copy of `trainer` evaluating `datasets` instead of its own eval datasets."""
    import copy

    other = copy.copy(trainer)
    other.eval_datasets, other._eval_losses = datasets, {}
    other.log_history = []
    return other


def _summary(history: list[dict[str, Any]]) -> tuple[int, float, float]:
    """(global step, mean training loss over all steps, epoch) from kosim's log records (each record's loss is
    the mean over the steps since the previous one)."""
    records = [r for r in history if "loss" in r]
    total, previous = 0.0, 0
    for r in records:
        total += r["loss"] * (r["step"] - previous)
        previous = r["step"]
    return previous, total / previous if previous else 0.0, records[-1]["epoch"] if records else 0.0


def _last_step(history: list[dict[str, Any]]) -> tuple[int, float]:
    records = [r for r in history if "step" in r]
    return (records[-1]["step"], records[-1].get("epoch", 0.0)) if records else (0, 0.0)
