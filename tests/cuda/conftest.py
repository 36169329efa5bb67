"""tests/cuda: every test here needs a CUDA GPU; without one the whole folder is skipped (cleanly, at collection)."""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "tests/cuda/" in item.nodeid.replace("\\", "/"):
            item.add_marker(skip)
