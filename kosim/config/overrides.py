"""``--override table.key=value``: setting values of a parsed config before it is validated."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kosim.config.files import BUNDLED, parse_toml_value
from kosim.config.schema import ConfigError

__all__ = ["apply_overrides"]


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
        value = parse_toml_value(text.strip())
        if parts[-1] == "path" and isinstance(value, str) and not value.startswith(BUNDLED):
            value = str(Path(value).expanduser().resolve())
        elif parts[-1] == "name_or_path" and isinstance(value, str) and Path(value).expanduser().is_dir():
            value = str(Path(value).expanduser().resolve())
        node[parts[-1]] = value
    return raw
