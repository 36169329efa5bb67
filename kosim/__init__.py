"""kosim: Korean sentence embeddings in plain PyTorch, compatible with sentence-transformers' model format."""

from __future__ import annotations

__version__ = "0.1.0"
