"""The sentence-transformers directory format: file names, module types, pooling modes, JSON and `modules.json`.

kosim writes the format of sentence-transformers 3.x (which every later release still reads) and reads both it
and the newer one (pooling_mode strings, module types under `sentence_transformers.base...`). Config files
are data only: module types are matched against a fixed table, never imported. This module imports no torch,
so the run-config layer can validate names (pooling modes) without loading the model stack.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

MODULES_JSON = "modules.json"
ST_CONFIG = "config_sentence_transformers.json"
SBERT_CONFIG = "sentence_bert_config.json"
HF_CONFIG = "config.json"  # the transformer's
MODULE_CONFIG = "config.json"  # each later module's (1_Pooling/config.json, 2_Dense/config.json)

# sentence-transformers' order: several modes on are concatenated in this order.
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
# `1_Pooling/config.json` booleans of sentence-transformers 3.x -> pooling mode
LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded exactly: missing or unexpected weights, bad files."""


# The keys each module config may hold (sentence-transformers 2.x to 6.x): anything else is refused at load, since
# an option kosim does not implement would silently change the embeddings.
POOLING_KEYS = (
    "word_embedding_dimension",
    "embedding_dimension",
    "pooling_mode",
    "include_prompt",
    *LEGACY_POOLING_KEYS,
)
DENSE_KEYS = (
    "in_features",
    "out_features",
    "bias",
    "activation_function",
    "use_residual",
    "module_input_name",
    "module_output_name",
)
NORMALIZE_KEYS = ("module_input_name", "module_output_name")
SENTENCE_EMBEDDING = "sentence_embedding"  # the feature Dense and Normalize act on by default


def check_module_config(cfg: Any, allowed: tuple[str, ...], source: str) -> dict[str, Any]:
    """`cfg` if it is a dict of `allowed` keys reading and writing the sentence embedding, else a CheckpointError
    naming `source` and the key."""
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{source}: expected a JSON object, got {type(cfg).__name__}")
    for key in cfg:
        if key not in allowed:
            raise CheckpointError(
                f"{source}: config key {key!r} is not supported by kosim (supported: {', '.join(allowed)})"
            )
    for key in ("module_input_name", "module_output_name"):
        if cfg.get(key) not in (None, SENTENCE_EMBEDDING):
            raise CheckpointError(
                f"{source}: {key}={cfg[key]!r} is not supported by kosim (only {SENTENCE_EMBEDDING!r}: the module "
                "must act on the sentence embedding)"
            )
    return cfg


def read_json(path: Path) -> Any:
    """Parse a JSON config file (data only), naming the file on error."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


MODULE_TYPES = {
    "transformer": "sentence_transformers.models.Transformer",
    "pooling": "sentence_transformers.models.Pooling",
    "dense": "sentence_transformers.models.Dense",
    "normalize": "sentence_transformers.models.Normalize",
}


def module_kind(type_name: str, source: Path) -> str:
    """`transformer`, `pooling`, `dense` or `normalize` for a modules.json type string (any ST version)."""
    last = type_name.rsplit(".", 1)[-1].lower()
    if last in MODULE_TYPES:
        return last
    raise CheckpointError(
        f"{source}: module type {type_name!r} is not supported by kosim (supported: Transformer, Pooling, Dense, Normalize)"
    )


def module_dir(model_dir: Path, sub: Any, source: Path) -> Path:
    """`model_dir / sub` for a module's `path` in modules.json, refusing any path that leaves `model_dir`.

    The check is on the path as written (absolute, a drive, or `..` climbing above the directory), so symlinked
    files inside a hub snapshot still load.
    """
    if not isinstance(sub, str):
        raise CheckpointError(f"{source}: module path {sub!r} must be a string")
    posix = posixpath.normpath(sub.replace("\\", "/"))  # Windows separators count for the check
    if PurePosixPath(posix).is_absolute() or PureWindowsPath(sub).drive or posix.split("/")[0] == "..":
        raise CheckpointError(f"{source}: module path {sub!r} leaves the model directory {model_dir}")
    return model_dir / posixpath.normpath(sub)  # "" and "." name the directory itself


def read_modules(model_dir: Path) -> list[tuple[str, Path]] | None:
    """`(kind, directory)` of each module in order, or None for a plain transformers checkpoint."""
    path = model_dir / MODULES_JSON
    if not path.is_file():
        return None
    entries = read_json(path)
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise CheckpointError(f"{path}: expected a non-empty list of modules")
    modules = []
    for i, entry in enumerate(sorted(entries, key=lambda e: e.get("idx", 0))):
        if "type" not in entry:
            raise CheckpointError(f"{path}: module {i} has no 'type'")
        modules.append((module_kind(entry["type"], path), module_dir(model_dir, entry.get("path", ""), path)))
    if modules[0][0] != "transformer":
        raise CheckpointError(f"{path}: the first module must be a Transformer, got {modules[0][0]}")
    return modules


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_modules(model_dir: Path, kinds_and_paths: list[tuple[str, str]]) -> None:
    entries = [
        {"idx": i, "name": str(i), "path": path, "type": MODULE_TYPES[kind]}
        for i, (kind, path) in enumerate(kinds_and_paths)
    ]
    write_json(model_dir / MODULES_JSON, entries)


def versions() -> dict[str, str]:
    """Versions recorded in `config_sentence_transformers.json` and the model card."""
    import platform

    import tokenizers
    import torch
    import transformers

    import kosim

    return {
        "kosim": kosim.__version__,
        "transformers": transformers.__version__,
        "pytorch": torch.__version__,
        "tokenizers": tokenizers.__version__,
        "python": platform.python_version(),
    }
