"""A deterministic encoder both libraries' evaluators accept: a fixed vector per text (shared by the new tests)."""

from __future__ import annotations

import numpy as np
import torch


class TableEncoder:
    """``encode`` looks every text up in ``table``; takes sentence-transformers' keywords (``truncate_dim``,
    ``convert_to_tensor``) and kosim's (``progress``)."""

    class _CardData:
        def set_evaluation_metrics(self, *args, **kwargs) -> None:
            pass

    def __init__(self, table: dict[str, np.ndarray], similarity_fn_name: str = "cosine") -> None:
        self.table = table
        self.similarity_fn_name = similarity_fn_name
        self.model_card_data = self._CardData()
        self.calls: list[int] = []

    def encode(self, texts, batch_size: int = 32, truncate_dim=None, convert_to_tensor=False, **kwargs):
        self.calls.append(len(texts))
        out = np.stack([self.table[t] for t in texts]).astype(np.float32)
        if truncate_dim is not None:
            out = out[:, :truncate_dim]
        return torch.from_numpy(out) if convert_to_tensor else out

    def encode_query(self, texts, **kwargs):
        return self.encode(texts, **kwargs)

    def encode_document(self, texts, **kwargs):
        return self.encode(texts, **kwargs)
