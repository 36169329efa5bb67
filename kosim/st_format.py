"""The sentence-transformers directory format: read and write `modules.json` and the per-module configs.

kosim writes the format of sentence-transformers 3.x (which every later release still reads) and reads both it
and the newer one (pooling_mode strings, module types under `sentence_transformers.base...`). Config files
are data only: module types are matched against a fixed table, never imported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kosim.nn.loading import CheckpointError, read_json

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


def read_modules(model_dir: Path) -> list[tuple[str, Path]] | None:
    """`(kind, directory)` of each module in order, or None for a plain transformers checkpoint."""
    path = model_dir / "modules.json"
    if not path.is_file():
        return None
    entries = read_json(path)
    if not isinstance(entries, list) or not entries:
        raise CheckpointError(f"{path}: expected a non-empty list of modules")
    modules = []
    for i, entry in enumerate(sorted(entries, key=lambda e: e.get("idx", 0))):
        if "type" not in entry:
            raise CheckpointError(f"{path}: module {i} has no 'type'")
        modules.append((module_kind(entry["type"], path), model_dir / entry.get("path", "")))
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
    write_json(model_dir / "modules.json", entries)


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
