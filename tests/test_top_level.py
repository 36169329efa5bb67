"""`from kosim import ...`: the main public names at the top level, imported lazily (torch only when used)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import kosim

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_every_exported_name_is_the_defining_modules_object():
    import importlib

    for name, module in kosim._EXPORTS.items():
        assert getattr(kosim, name) is getattr(importlib.import_module(module), name), name
    for name in kosim._SUBMODULES:
        assert getattr(kosim, name) is importlib.import_module(f"kosim.{name}")
    assert set(kosim.__all__) <= set(dir(kosim))


def test_the_readme_names_import_from_the_top_level():
    from kosim import SentenceEncoder, Trainer, TrainingArguments, losses
    from kosim.model import SentenceEncoder as direct
    from kosim.training import Trainer as trainer
    from kosim.training import TrainingArguments as arguments

    assert (SentenceEncoder, Trainer, TrainingArguments) == (direct, trainer, arguments)
    assert losses.MultipleNegativesRankingLoss is kosim.MultipleNegativesRankingLoss


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="module 'kosim' has no attribute 'SentenceTransformer'"):
        kosim.SentenceTransformer  # noqa: B018
    with pytest.raises(ImportError):
        from kosim import NoSuchThing  # noqa: F401


def test_imports_are_lazy():
    # importing kosim, listing it, or reading TrainingArguments (kosim.config) loads no torch ...
    assert _run("import sys, kosim; dir(kosim); kosim.TrainingArguments; print('torch' in sys.modules)") == "False"
    # ... and a model name does
    assert _run("import sys; from kosim import SentenceEncoder; print('torch' in sys.modules)") == "True"
