"""Where config files and the data they name are found, and the one function that reads a TOML file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kosim.config.schema import ConfigError
from kosim.utils.paths import CONFIGS_DIR, KORNLU_DIR, RESOURCES_DIR

try:
    import tomllib
except ImportError:  # Python 3.10
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ImportError:  # pragma: no cover - only on 3.10 without tomli
        tomllib = None  # type: ignore[assignment]

__all__ = ["BUNDLED", "CONFIGS_DIR", "config_file", "read_toml", "resolve_path"]

BUNDLED = "kosim:"


def config_file(path: str | Path) -> Path:
    """A config path as given: ``kosim:NAME.toml`` names a config bundled in ``kosim/configs``."""
    text = str(path)
    return CONFIGS_DIR / text[len(BUNDLED) :] if text.startswith(BUNDLED) else Path(text).expanduser()


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML document at ``path``; a missing file or invalid TOML is a ConfigError naming the file."""
    if tomllib is None:
        raise ConfigError("reading TOML configs needs Python 3.11+ (tomllib) or the 'tomli' package")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def parse_toml_value(text: str) -> Any:
    """A TOML value (``1e-4``, ``true``, ``[1, 2]``, ``"x"``), or the bare text when it is not one."""
    if tomllib is None:
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def resolve_path(value: str, base_dir: Path) -> Path:
    """A data path: ``kosim:REL`` inside the bundled resources, else relative to ``base_dir`` (the TOML's folder)."""
    if value.startswith(BUNDLED):
        rel = value[len(BUNDLED) :].lstrip("/")
        candidates = [KORNLU_DIR / rel, RESOURCES_DIR / rel]
        return next((c for c in candidates if c.exists()), candidates[0])
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()
