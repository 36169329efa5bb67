"""Locations of the KorNLU data files bundled inside the package.

The KorSTS and KorNLI files (CC BY-SA 4.0, see ``kosim/resources/kornlu/ATTRIBUTION.md``) live in
``kosim/resources/kornlu``.  Paths are resolved relative to this module so they work from a source checkout, an
editable install and a wheel alike, without network access.
"""

from __future__ import annotations

from pathlib import Path

from kosim.utils.paths import KORNLU_DIR

__all__ = ["KORNLU_DIR", "korsts_path", "kornli_path"]


_KORSTS_FILES = {"train": "sts-train.tsv", "dev": "sts-dev.tsv"}
_KORNLI_FILES = {"dev": "xnli.dev.ko.tsv"}


def _resolve(kind: str, folder: str, files: dict[str, str], split: str) -> Path:
    if split not in files:
        valid = ", ".join(repr(s) for s in files)
        raise ValueError(f"unknown {kind} split {split!r}; valid splits: {valid}")
    path = KORNLU_DIR / folder / files[split]
    if not path.is_file():
        raise FileNotFoundError(f"bundled {kind} file is missing: {path}")
    return path


def korsts_path(split: str) -> Path:
    """Path of the bundled KorSTS ``split`` file ("train" or "dev")."""
    return _resolve("KorSTS", "KorSTS", _KORSTS_FILES, split)


def kornli_path(split: str = "dev") -> Path:
    """Path of the bundled KorNLI ``split`` file; only "dev" (the Korean XNLI dev set) is shipped."""
    return _resolve("KorNLI", "KorNLI", _KORNLI_FILES, split)
