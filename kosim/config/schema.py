"""The validated form of a run config: one dataclass per TOML table, and the names the parser accepts."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kosim.config.arguments import TrainingArguments

__all__ = ["ConfigError", "DatasetConfig", "EvaluatorConfig", "MiningConfig", "ModelConfig", "RunConfig"]

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
RETRIEVAL_SOURCES = ("kornli", "beir")  # the bundled KorNLI retrieval task, or a BEIR directory
IR_SCORE_FUNCTIONS = ("cosine", "dot")
MINED_FORMATS = ("triplet", "n-tuple")  # the mined rows a contrastive loss trains on


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
    label: str | list[str] | None = None  # a list (or "scores" for scores_0, scores_1, ..): a vector label per row
    max_rows: int | None = None
    seed: int = 42  # kornli_triplets: the seed of the random partner picks
    loss: str | None = None  # None for eval_datasets (they use the training loss of the same name, else the first)
    loss_args: dict[str, Any] = field(default_factory=dict)
    guide: str | None = None  # GISTEmbedLoss: the guide model (a directory, resolved, or a hub id)
    teacher: str | None = None  # MSELoss: the teacher model whose embeddings the student learns


@dataclass
class EvaluatorConfig:
    """One ``[[evaluators]]`` entry: an STS (``sts``) or triplet (``triplet``) evaluator over a file, or an
    information-retrieval (``ir``) evaluator over a retrieval task.

    For ``ir``, ``format`` is the task's source: ``"kornli"`` (the bundled KorNLI retrieval task; ``path`` an
    optional KorNLI-format tsv, ``split`` all / train / dev of a ``dev_size`` / ``seed`` split) or ``"beir"``
    (``path`` a BEIR directory, ``split`` its qrels split); ``max_rows`` keeps the first queries (all the corpus),
    and ``options`` holds the InformationRetrievalEvaluator's keyword arguments.
    """

    type: str
    name: str
    path: Path | None
    format: str
    columns: list[str] | None = None
    label: str | None = None
    max_rows: int | None = None
    batch_size: int | None = None  # None: training.per_device_eval_batch_size
    similarity_fns: list[str] = field(default_factory=lambda: ["cosine"])
    main_similarity: str | None = None  # sts / triplet: the similarity of the primary metric
    during_training: bool = True  # False: only before and after training (e.g. a test set)
    split: str | None = None  # ir only
    dev_size: float | int = 0.5  # ir, kornli only
    seed: int = 42  # ir, kornli only
    options: dict[str, Any] = field(default_factory=dict)  # ir only


@dataclass
class MiningConfig:
    """``[mining]``: before training, mine hard negatives for a retrieval task's (query, positive) pairs with the
    start model; the mined rows (written to ``output_dir``) become the training dataset ``name`` (with
    ``output_scores``, n-tuple rows labelled by the start model's scores of the positive and each negative, for
    MarginMSELoss).

    ``source`` / ``path`` / ``split`` / ``dev_size`` / ``seed`` / ``max_rows`` select the task as for an ``ir``
    evaluator (``max_rows``: the first queries); the task's whole corpus is the candidate pool. ``options`` holds
    :func:`kosim.mining.mine_hard_negatives`' keyword arguments.
    """

    source: str
    path: Path | None = None
    split: str = "train"
    dev_size: float | int = 0.5
    seed: int = 42
    max_rows: int | None = None
    name: str = "mined"
    loss: str = "MultipleNegativesRankingLoss"
    loss_args: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    guide: str | None = None  # GISTEmbedLoss: the guide model (e.g. the start model's name: a frozen copy of it)


@dataclass
class RunConfig:
    """A whole validated run: model, data with losses, evaluators, and TrainingArguments."""

    model: ModelConfig
    datasets: list[DatasetConfig]
    training: TrainingArguments
    evaluators: list[EvaluatorConfig] = field(default_factory=list)
    eval_datasets: list[DatasetConfig] = field(default_factory=list)
    source: str = "<config>"
    mining: MiningConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (paths as strings), e.g. for ``kosim train --dry-run``."""

        def plain(obj: Any) -> dict[str, Any]:
            out = {f.name: getattr(obj, f.name) for f in fields(obj)}
            return {k: str(v) if isinstance(v, Path) else v for k, v in out.items()}

        out = {
            "model": plain(self.model),
            "datasets": [plain(d) for d in self.datasets],
            "eval_datasets": [plain(d) for d in self.eval_datasets],
            "evaluators": [plain(e) for e in self.evaluators],
            "training": self.training.to_dict(),
        }
        if self.mining is not None:
            out["mining"] = plain(self.mining)
        return out
