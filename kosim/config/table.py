"""One TOML table read key by key: unknown keys rejected with a suggestion, each value checked for its type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kosim.config.schema import ConfigError
from kosim.utils.suggest import did_you_mean

MISSING = object()
TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "a table",
}
POSITIVE = ("max_seq_length", "max_rows", "batch_size")


class Table:
    """One TOML table: unknown keys are rejected up front, then typed values are taken one by one."""

    def __init__(self, raw: Any, where: str, source: str, keys: Sequence[str]):
        self.where, self.source = where, source
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: {where} must be a table, got {raw!r}")
        for key in raw:
            if key not in keys:
                raise ConfigError(f"{self.prefix}unknown key {key!r}{did_you_mean(key, keys)}")
        self.raw = raw

    @property
    def prefix(self) -> str:
        """``"file: [table] "``, the start of every message about this table."""
        return f"{self.source}: {self.where} " if self.where else f"{self.source}: "

    def error(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.prefix}{key}: {why}")

    def get(self, key: str, types: tuple[type, ...], default: Any = MISSING, choices: Sequence[str] = ()) -> Any:
        """The value of ``key``, of one of ``types`` (an int is accepted as a float, a bool never as an int)."""
        if key not in self.raw:
            if default is MISSING:
                raise ConfigError(f"{self.prefix}missing required key {key!r}")
            return default
        value = self.raw[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok and float in types and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.error(key, f"expected {' or '.join(TYPE_NAMES[t] for t in types)}, got {value!r}")
        if choices and value not in choices:
            raise self.error(
                key, f"unknown value {value!r}; expected one of {list(choices)}{did_you_mean(value, choices)}"
            )
        if isinstance(value, int) and not isinstance(value, bool) and value < 1 and key in POSITIVE:
            raise self.error(key, f"must be a positive integer, got {value}")
        return value

    def strings(self, key: str, default: Any = None) -> list[str] | None:
        """A string or an array of non-empty strings, as a list."""
        value = self.get(key, (list, str), default)
        if isinstance(value, str):
            value = [value]
        if value is not None and (not value or not all(isinstance(v, str) and v for v in value)):
            raise self.error(key, f"expected a non-empty array of strings, got {value!r}")
        return value
