"""The validated form of a run config: one dataclass per TOML table, and the names the parser accepts."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kosim.config.arguments import TrainingArguments

__all__ = ["ConfigError", "DatasetConfig", "EvaluatorConfig", "ModelConfig", "RunConfig"]

FORMATS = ("korsts", "kornli_triplets", "kornli_pairs", "tsv", "csv", "jsonl")
FIXED_COLUMNS = {
    "korsts": (["sentence1", "sentence2"], True),
    "kornli_triplets": (["anchor", "positive", "negative"], False),
    "kornli_pairs": (["premise", "hypothesis"], True),  # label: the NLI class index 0 / 1 / 2
}  # format -> (columns, has a score label)
EVALUATOR_TYPES = {
    "sts": ("korsts", 2, True),
    "triplet": ("kornli_triplets", 3, False),
}  # default format, columns, label


class ConfigError(ValueError):
    """A run config is invalid; the message starts with the file and names the table and key."""


@dataclass
class ModelConfig:
    """``[model]``: the start model, optionally with another sequence length or (plain checkpoints) pooling."""

    name_or_path: str
    max_seq_length: int | None = None
    pooling: list[str] | None = None
    trust_remote_code: bool = False


@dataclass
class DatasetConfig:
    """One ``[[datasets]]`` (training, with a loss) or ``[[eval_datasets]]`` (validation loss) entry."""

    name: str
    path: Path
    format: str
    columns: list[str] | None = None
    label: str | None = None
    max_rows: int | None = None
    seed: int = 42  # kornli_triplets: the seed of the random partner picks
    loss: str | None = None  # None for eval_datasets (they use the training loss of the same name, else the first)
    loss_args: dict[str, Any] = field(default_factory=dict)
    guide: str | None = None  # GISTEmbedLoss: the guide model (a directory, resolved, or a hub id)


@dataclass
class EvaluatorConfig:
    """One ``[[evaluators]]`` entry: an STS (``sts``) or triplet (``triplet``) evaluator over a file."""

    type: str
    name: str
    path: Path
    format: str
    columns: list[str] | None = None
    label: str | None = None
    max_rows: int | None = None
    batch_size: int | None = None  # None: training.per_device_eval_batch_size
    similarity_fns: list[str] = field(default_factory=lambda: ["cosine"])
    during_training: bool = True  # False: only before and after training (e.g. a test set)


@dataclass
class RunConfig:
    """A whole validated run: model, data with losses, evaluators, and TrainingArguments."""

    model: ModelConfig
    datasets: list[DatasetConfig]
    training: TrainingArguments
    evaluators: list[EvaluatorConfig] = field(default_factory=list)
    eval_datasets: list[DatasetConfig] = field(default_factory=list)
    source: str = "<config>"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (paths as strings), e.g. for ``kosim train --dry-run``."""

        def plain(obj: Any) -> dict[str, Any]:
            out = {f.name: getattr(obj, f.name) for f in fields(obj)}
            return {k: str(v) if isinstance(v, Path) else v for k, v in out.items()}

        return {
            "model": plain(self.model),
            "datasets": [plain(d) for d in self.datasets],
            "eval_datasets": [plain(d) for d in self.eval_datasets],
            "evaluators": [plain(e) for e in self.evaluators],
            "training": self.training.to_dict(),
        }
