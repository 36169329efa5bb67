"""TOML run configs: parsed with tomllib, validated at the edge into dataclasses, then run end to end.

A run config names a model, one or more training datasets (each with its loss), optional evaluators and
validation-loss datasets, and the ``[training]`` table of :class:`~kosim.training.TrainingArguments`::

    [model]
    name_or_path = "klue/roberta-base"   # hub id, or a local directory relative to this file
    max_seq_length = 128                 # optional
    pooling = "mean"                     # optional; plain transformers checkpoints only

    [[datasets]]
    name = "nli"
    path = "kosim:KorNLI/xnli.dev.ko.tsv"  # relative to this file; "kosim:" = the bundled KorNLU copy
    format = "kornli_triplets"           # korsts | kornli_triplets | tsv | csv | jsonl
    loss = "MultipleNegativesRankingLoss"
    loss_args = { scale = 20.0 }

    [[evaluators]]
    type = "sts"                         # sts | triplet
    name = "sts-dev"
    path = "kosim:KorSTS/sts-dev.tsv"

    [training]
    output_dir = "output/nli"            # relative to the working directory
    per_device_train_batch_size = 64

Every table rejects unknown keys with a suggestion, and every data path must exist when the config is loaded.
:func:`run` loads the model and data, evaluates before training, trains with the Trainer (which saves the model
and its card to ``output_dir``), and returns ``{"before": metrics, "after": metrics, "output_dir": path}``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kosim.data.resources import KORNLU_DIR
from kosim.training.arguments import TrainingArguments

try:
    import tomllib
except ImportError:  # Python 3.10
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ImportError:  # pragma: no cover - only on 3.10 without tomli
        tomllib = None  # type: ignore[assignment]

__all__ = [
    "CONFIGS_DIR",
    "ConfigError",
    "DatasetConfig",
    "EvaluatorConfig",
    "ModelConfig",
    "RunConfig",
    "apply_overrides",
    "load_config",
    "parse_config",
    "run",
]

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
RESOURCES_DIR = Path(__file__).resolve().parent / "resources"
BUNDLED = "kosim:"
FORMATS = ("korsts", "kornli_triplets", "tsv", "csv", "jsonl")
FIXED_COLUMNS = {
    "korsts": (["sentence1", "sentence2"], True),
    "kornli_triplets": (["anchor", "positive", "negative"], False),
}
EVALUATOR_TYPES = {
    "sts": ("korsts", 2, True),
    "triplet": ("kornli_triplets", 3, False),
}  # default format, columns, label
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
_MISSING = object()


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


# ----------------------------------------------------------------------------------------------------- parsing
def _suggest(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "a table",
}
_POSITIVE = ("max_seq_length", "max_rows", "batch_size")


class _Table:
    """One TOML table: unknown keys are rejected up front, then typed values are taken one by one."""

    def __init__(self, raw: Any, where: str, source: str, keys: Sequence[str]):
        self.where, self.source = where, source
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: {where} must be a table, got {raw!r}")
        for key in raw:
            if key not in keys:
                raise ConfigError(f"{self.prefix}unknown key {key!r}{_suggest(key, keys)}")
        self.raw = raw

    @property
    def prefix(self) -> str:
        """``"file: [table] "``, the start of every message about this table."""
        return f"{self.source}: {self.where} " if self.where else f"{self.source}: "

    def error(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.prefix}{key}: {why}")

    def get(self, key: str, types: tuple[type, ...], default: Any = _MISSING, choices: Sequence[str] = ()) -> Any:
        if key not in self.raw:
            if default is _MISSING:
                raise ConfigError(f"{self.prefix}missing required key {key!r}")
            return default
        value = self.raw[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok and float in types and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.error(key, f"expected {' or '.join(_TYPE_NAMES[t] for t in types)}, got {value!r}")
        if choices and value not in choices:
            raise self.error(key, f"unknown value {value!r}; expected one of {list(choices)}{_suggest(value, choices)}")
        if isinstance(value, int) and not isinstance(value, bool) and value < 1 and key in _POSITIVE:
            raise self.error(key, f"must be a positive integer, got {value}")
        return value

    def strings(self, key: str, default: Any = None) -> list[str] | None:
        value = self.get(key, (list, str), default)
        if isinstance(value, str):
            value = [value]
        if value is not None and (not value or not all(isinstance(v, str) and v for v in value)):
            raise self.error(key, f"expected a non-empty array of strings, got {value!r}")
        return value


def resolve_path(value: str, base_dir: Path) -> Path:
    """A data path: ``kosim:REL`` inside the bundled resources, else relative to ``base_dir`` (the TOML's folder)."""
    if value.startswith(BUNDLED):
        rel = value[len(BUNDLED) :].lstrip("/")
        candidates = [KORNLU_DIR / rel, RESOURCES_DIR / rel]
        return next((c for c in candidates if c.exists()), candidates[0])
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def _data_path(table: _Table, base_dir: Path) -> Path:
    value = table.get("path", (str,))
    path = resolve_path(value, base_dir)
    if not path.is_file():
        raise table.error("path", f"file not found: {path}" + (f" (given {value!r})" if str(path) != value else ""))
    return path


def _columns(table: _Table, fmt: str) -> tuple[list[str] | None, str | None]:
    columns, label = table.strings("columns"), table.get("label", (str,), None)
    if fmt in FIXED_COLUMNS and (columns is not None or label is not None):
        fixed, has_label = FIXED_COLUMNS[fmt]
        raise table.error(
            "columns" if columns is not None else "label",
            f"format {fmt!r} has fixed columns {fixed}{' and a score label' if has_label else ''}; "
            "use format 'tsv', 'csv' or 'jsonl' to pick columns",
        )
    return columns, label


_DATASET_KEYS = ("name", "path", "format", "columns", "label", "max_rows", "seed", "loss", "loss_args")


def _parse_dataset(raw: Any, where: str, source: str, base_dir: Path, with_loss: bool) -> DatasetConfig:
    keys = _DATASET_KEYS if with_loss else _DATASET_KEYS[:-2]
    if not with_loss and isinstance(raw, dict) and ("loss" in raw or "loss_args" in raw):
        raise ConfigError(
            f"{source}: {where} has no 'loss' key: a validation dataset uses the loss of the training dataset "
            "with the same name (else the first training dataset's loss)"
        )
    t = _Table(raw, where, source, keys)
    name = t.get("name", (str,))
    t.where = f"{where.split(' #')[0]} {name!r}"
    fmt = t.get("format", (str,), choices=FORMATS)
    columns, label = _columns(t, fmt)
    cfg = DatasetConfig(
        name=name,
        path=_data_path(t, base_dir),
        format=fmt,
        columns=columns,
        label=label,
        max_rows=t.get("max_rows", (int,), None),
        seed=t.get("seed", (int,), 42),
    )
    if with_loss:
        from kosim.losses import build_loss

        cfg.loss = t.get("loss", (str,))
        cfg.loss_args = t.get("loss_args", (dict,), {})
        try:
            build_loss(cfg.loss, **cfg.loss_args)
        except (TypeError, ValueError) as exc:
            raise t.error("loss", str(exc)) from None
    return cfg


_EVALUATOR_KEYS = (
    "type", "name", "path", "format", "columns", "label", "max_rows", "batch_size", "similarity_fns", "during_training",
)  # fmt: skip


def _parse_evaluator(raw: Any, where: str, source: str, base_dir: Path) -> EvaluatorConfig:
    t = _Table(raw, where, source, _EVALUATOR_KEYS)
    kind = t.get("type", (str,), choices=tuple(EVALUATOR_TYPES))
    default_format, n_columns, needs_label = EVALUATOR_TYPES[kind]
    name = t.get("name", (str,), f"{kind}-eval")
    t.where = f"{where.split(' #')[0]} {name!r}"
    fmt = t.get("format", (str,), default_format, choices=FORMATS)
    columns, label = _columns(t, fmt)
    fixed = FIXED_COLUMNS.get(fmt)
    if fixed is not None and (len(fixed[0]) != n_columns or fixed[1] != needs_label):
        raise t.error("format", f"a {kind!r} evaluator cannot read format {fmt!r}")
    if columns is not None and len(columns) != n_columns:
        raise t.error("columns", f"a {kind!r} evaluator needs {n_columns} columns, got {columns}")
    if fixed is None and needs_label and label is None:
        raise t.error("label", f"a {kind!r} evaluator needs a score column ('label')")
    from kosim.similarity import resolve_similarity

    sims = t.strings("similarity_fns", ["cosine"])
    try:
        [resolve_similarity(s) for s in sims]
    except (KeyError, ValueError) as exc:
        raise t.error("similarity_fns", str(exc)) from None
    return EvaluatorConfig(
        type=kind,
        name=name,
        path=_data_path(t, base_dir),
        format=fmt,
        columns=columns,
        label=label,
        max_rows=t.get("max_rows", (int,), None),
        batch_size=t.get("batch_size", (int,), None),
        similarity_fns=sims,
        during_training=t.get("during_training", (bool,), True),
    )


def _parse_model(raw: Any, source: str, base_dir: Path) -> ModelConfig:
    t = _Table(raw, "[model]", source, ("name_or_path", "max_seq_length", "pooling", "trust_remote_code"))
    name = t.get("name_or_path", (str,))
    for local in (base_dir / Path(name).expanduser(), Path(name).expanduser()):  # else a hub id
        if local.is_dir():
            name = str(local.resolve())
            break
    pooling = t.strings("pooling")
    for mode in pooling or ():
        if mode not in POOLING_MODES:
            raise t.error("pooling", f"unknown pooling mode {mode!r}; expected one of {list(POOLING_MODES)}")
    return ModelConfig(name, t.get("max_seq_length", (int,), None), pooling, t.get("trust_remote_code", (bool,), False))


def _parse_training(raw: Any, source: str) -> TrainingArguments:
    known = [f.name for f in fields(TrainingArguments) if f.name != "extra"]
    _Table(raw, "[training]", source, known)
    try:
        return TrainingArguments(**raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: [training] {exc}") from None


def parse_config(raw: dict[str, Any], base_dir: str | os.PathLike | None = None, source: str = "<config>") -> RunConfig:
    """Validate a config mapping (a parsed TOML document) into a :class:`RunConfig`; relative paths use ``base_dir``."""
    base = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    top = _Table(raw, "", source, ("model", "datasets", "eval_datasets", "evaluators", "training"))
    top.get("model", (dict,))
    datasets_raw = top.get("datasets", (list,))
    if not datasets_raw:
        raise ConfigError(f"{source}: [[datasets]] needs at least one training dataset")
    datasets = [_parse_dataset(d, f"[[datasets]] #{i + 1}", source, base, True) for i, d in enumerate(datasets_raw)]
    evals = top.get("eval_datasets", (list,), [])
    eval_datasets = [_parse_dataset(d, f"[[eval_datasets]] #{i + 1}", source, base, False) for i, d in enumerate(evals)]
    evaluators = [
        _parse_evaluator(e, f"[[evaluators]] #{i + 1}", source, base)
        for i, e in enumerate(top.get("evaluators", (list,), []))
    ]
    for what, items in (("datasets", datasets), ("eval_datasets", eval_datasets), ("evaluators", evaluators)):
        names = [item.name for item in items]
        if len(set(names)) != len(names):
            raise ConfigError(f"{source}: [[{what}]] names must be unique, got {names}")
    return RunConfig(
        model=_parse_model(raw["model"], source, base),
        datasets=datasets,
        training=_parse_training(top.get("training", (dict,), {}), source),
        evaluators=evaluators,
        eval_datasets=eval_datasets,
        source=source,
    )


def _parse_value(text: str) -> Any:
    """A TOML value (``1e-4``, ``true``, ``[1, 2]``, ``"x"``), or the bare text when it is not one."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str], source: str = "--override") -> dict[str, Any]:
    """Set ``table.key=value`` entries in a parsed config, in place.

    Arrays of tables take an index or a name: ``datasets.0.max_rows=100`` or ``datasets.nli.max_rows=100``. Values
    are TOML (bare words are strings). A relative ``path`` given here is relative to the working directory.
    """
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ConfigError(
                f"{source}: {item!r} is not of the form table.key=value (e.g. training.learning_rate=1e-4)"
            )
        node: Any = raw
        for depth, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                match = [d for d in node if isinstance(d, dict) and d.get("name") == part]
                if part.isdigit() and int(part) < len(node):
                    node = node[int(part)]
                elif match:
                    node = match[0]
                else:
                    names = [d.get("name") for d in node if isinstance(d, dict)]
                    raise ConfigError(
                        f"{source}: {item!r}: no entry {part!r} in [[{parts[depth - 1]}]] (names {names})"
                    )
            elif isinstance(node, dict):
                node = node.setdefault(part, [] if part in ("datasets", "eval_datasets", "evaluators") else {})
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"{source}: {item!r}: {'.'.join(parts[: depth + 1])} is not a table")
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: {item!r}: pick one entry of the array, e.g. {parts[0]}.0.{parts[-1]}=...")
        value = _parse_value(text.strip())
        if parts[-1] == "path" and isinstance(value, str) and not value.startswith(BUNDLED):
            value = str(Path(value).expanduser().resolve())
        elif parts[-1] == "name_or_path" and isinstance(value, str) and Path(value).expanduser().is_dir():
            value = str(Path(value).expanduser().resolve())
        node[parts[-1]] = value
    return raw


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> RunConfig:
    """Read and validate a TOML run config; ``kosim:NAME.toml`` names a config bundled in ``kosim/configs``."""
    if tomllib is None:
        raise ConfigError("reading TOML configs needs Python 3.11+ (tomllib) or the 'tomli' package")
    text = str(path)
    file = CONFIGS_DIR / text[len(BUNDLED) :] if text.startswith(BUNDLED) else Path(text).expanduser()
    if not file.is_file():
        raise ConfigError(f"{file}: config file not found")
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    apply_overrides(raw, overrides)
    return parse_config(raw, base_dir=file.parent, source=str(file))


def run(config: RunConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Load, evaluate before training, train, evaluate after (see :func:`kosim.runner.run_config`).

    Returns ``{"before": metrics, "after": metrics, "output_dir": path, "train_seconds": seconds}``; the Trainer
    saves the final model (sentence-transformers format) and its model card to ``output_dir``.
    """
    from kosim.runner import run_config

    return run_config(config, log)
