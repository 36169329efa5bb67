"""The argument checks that `encode`, the evaluators and the ONNX runner share: one wording, one place.

Each returns the value it accepts (normalised where that is free) and raises naming the argument otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def check_texts(texts: Any, name: str = "texts", single_ok: bool = False) -> list[str]:
    """A list of str (from any sequence or array of str), or a TypeError naming the first bad item by index.

    A bare str or bytes is refused rather than split into characters; `single_ok` says, in the message, that the
    caller also takes one str (as `encode` does, before calling this)."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence | np.ndarray):
        expected = "a str or a list of str" if single_ok else "a list of str"
        raise TypeError(f"{name} must be {expected}, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(text).__name__}")
    return list(texts)


def check_batch_size(batch_size: Any) -> int:
    """A positive int (a bool refused), or a ValueError."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def check_truncate_dim(value: Any) -> int | None:
    """None, or a positive int (a bool refused): a `truncate_dim` argument of encode, an evaluator or kosim.st."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"truncate_dim must be a positive int or None, got {value!r}")
    return value


__all__ = ["check_batch_size", "check_texts", "check_truncate_dim"]
