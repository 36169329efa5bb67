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
BOOLEAN_KEYS = ("include_prompt", "bias", "use_residual", *LEGACY_POOLING_KEYS)
# a modules.json entry: `kwargs` names encode() arguments handed to the module, which kosim's modules take none of
MODULE_ENTRY_KEYS = ("idx", "name", "path", "type", "kwargs")

# `config_sentence_transformers.json`: the keys sentence-transformers 2.x to 6.x write; any other is refused
ST_CONFIG_KEYS = ("__version__", "model_type", "prompts", "default_prompt_name", "similarity_fn_name", "truncate_dim")
ST_MODEL_TYPE = "SentenceTransformer"

# The Transformer module's config: `sentence_bert_config.json`, or one of the older names sentence-transformers
# still reads (the first that exists is used, in this order).
SBERT_CONFIG_NAMES = (
    SBERT_CONFIG,
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)
# Its keys (sentence-transformers 2.x to 6.x): kosim acts on `max_seq_length` and `do_lower_case`; every other
# key is accepted only at a value that leaves the embeddings as kosim computes them (key -> accepted values).
TRANSFORMER_TEXT_MODALITY = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}
TRANSFORMER_DEFAULT_ONLY: dict[str, tuple[Any, ...]] = {
    "transformer_task": ("feature-extraction",),
    "modality_config": (None, TRANSFORMER_TEXT_MODALITY),
    "module_output_name": (None, "token_embeddings"),
    "processing_kwargs": (None, {}),
    "unpad_inputs": (None, True, False),  # padding only changes speed: kosim never pads
    "query_length": (None,),
    "document_length": (None,),
    "query_expansion": (None,),
    "backend": ("torch",),
    "cache_dir": (None,),
    "tokenizer_name_or_path": (None,),
}
# from_pretrained keyword dicts (old and new names): only empty ones, or `trust_remote_code`, which
# sentence-transformers drops from a config file and kosim takes from the caller
TRANSFORMER_LOADER_KWARGS = (
    "model_args",
    "model_kwargs",
    "tokenizer_args",
    "processor_kwargs",
    "config_args",
    "config_kwargs",
)
TRANSFORMER_KEYS = ("max_seq_length", "do_lower_case", *TRANSFORMER_DEFAULT_ONLY, *TRANSFORMER_LOADER_KWARGS)


def check_transformer_config(cfg: Any, source: str, error: type[Exception] = CheckpointError) -> dict[str, Any]:
    """`{"max_seq_length": int | None, "do_lower_case": bool}` of a Transformer module config (or of the same
    options given to `kosim.st.models.Transformer`); anything kosim would not honour raises `error` naming
    `source` and the key."""
    if not isinstance(cfg, dict):
        raise error(f"{source}: expected a JSON object, got {type(cfg).__name__}")
    for key, value in cfg.items():
        if key not in TRANSFORMER_KEYS:
            raise error(
                f"{source}: config key {key!r} is not supported by kosim (supported: {', '.join(TRANSFORMER_KEYS)})"
            )
        if key in TRANSFORMER_DEFAULT_ONLY and not any(
            type(value) is type(ok) and value == ok for ok in TRANSFORMER_DEFAULT_ONLY[key]
        ):
            accepted = " or ".join(repr(ok) for ok in TRANSFORMER_DEFAULT_ONLY[key])
            raise error(f"{source}: {key}={value!r} is not supported by kosim (only {accepted})")
        if key in TRANSFORMER_LOADER_KWARGS and not (
            value is None or (isinstance(value, dict) and set(value) <= {"trust_remote_code"})
        ):
            raise error(
                f"{source}: {key}={value!r} is not supported by kosim (from_pretrained options other than "
                "trust_remote_code would change the loaded model)"
            )
    max_seq_length = cfg.get("max_seq_length")
    if max_seq_length is not None and (type(max_seq_length) is not int or max_seq_length < 2):
        raise error(f"{source}: max_seq_length must be an int >= 2 or null, got {max_seq_length!r}")
    do_lower_case = cfg.get("do_lower_case", False)
    if type(do_lower_case) is not bool:
        raise error(f"{source}: do_lower_case must be true or false, got {do_lower_case!r}")
    return {"max_seq_length": max_seq_length, "do_lower_case": do_lower_case}


def read_transformer_config(transformer_dir: Path) -> dict[str, Any]:
    """`check_transformer_config` of the Transformer module's config file; the defaults when there is none."""
    for name in SBERT_CONFIG_NAMES:
        path = transformer_dir / name
        if path.is_file():
            return check_transformer_config(read_json(path), str(path))
    return check_transformer_config({}, str(transformer_dir / SBERT_CONFIG))


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
    for key in BOOLEAN_KEYS:
        if key in cfg and type(cfg[key]) is not bool:
            raise CheckpointError(f"{source}: {key} must be true or false, got {cfg[key]!r}")
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
        for key in entry:
            if key not in MODULE_ENTRY_KEYS:
                raise CheckpointError(f"{path}: module {i}: key {key!r} is not supported by kosim")
        if entry.get("kwargs"):
            raise CheckpointError(f"{path}: module {i}: kwargs={entry['kwargs']!r} is not supported by kosim")
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
