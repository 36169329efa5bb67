"""Test doubles for mining: one deterministic text embedding shared by a kosim-side and an ST-side model.

Each text becomes the L2-normalised sum of weighted, hashed character bigrams (crc32, so stable across runs and
processes): texts sharing words score higher, scores spread continuously (real-valued weights, so exact ties
between distinct texts are improbable), and encoding a few hundred texts takes milliseconds.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

DIM = 64


def embed(text: str, dim: int = DIM) -> np.ndarray:
    vector = np.zeros(dim, dtype=np.float64)
    padded = f" {text} "
    for i in range(len(padded) - 1):
        crc = zlib.crc32(padded[i : i + 2].encode("utf-8"))
        vector[crc % dim] += 0.5 + (crc >> 8) % 9973 / 9973.0
    vector /= np.linalg.norm(vector)
    return vector.astype(np.float32)


def embed_all(texts) -> np.ndarray:
    return np.stack([embed(t) for t in texts]).reshape(len(texts), DIM)


class HashEncoder:
    """What mine_hard_negatives needs of a kosim SentenceEncoder; records the texts of every encode call."""

    device = torch.device("cpu")

    def __init__(self, prompts: dict[str, str] | None = None, fail_after_calls: int | None = None):
        self.prompts = dict(prompts or {})
        self.default_prompt_name = None
        self.calls: list[list[str]] = []
        self.fail_after_calls = fail_after_calls

    def get_sentence_embedding_dimension(self) -> int:
        return DIM

    def encode(self, texts, batch_size=32, normalize=False, dtype="float32", prompt=None, progress=None, **_):
        if self.fail_after_calls is not None and len(self.calls) >= self.fail_after_calls:
            raise KeyboardInterrupt("killed")
        self.calls.append(list(texts))
        return embed_all([(prompt or "") + t for t in texts])

    def __repr__(self) -> str:
        return f"HashEncoder(dim={DIM})"


class HashSentenceTransformer:
    """The same embedding behind sentence-transformers' interface (encode_query / encode_document, similarity)."""

    device = torch.device("cpu")

    def __init__(self, prompts: dict[str, str] | None = None):
        self.prompts = dict(prompts or {})

    def _prompt(self, prompt, prompt_name, defaults):
        if prompt is not None:
            return prompt
        if prompt_name is None:
            prompt_name = next((name for name in defaults if name in self.prompts), None)
        return self.prompts[prompt_name] if prompt_name is not None else ""

    def encode_query(self, inputs, prompt_name=None, prompt=None, **_):
        text = self._prompt(prompt, prompt_name, ("query",))
        return embed_all([text + t for t in inputs])

    def encode_document(self, inputs, prompt_name=None, prompt=None, **_):
        text = self._prompt(prompt, prompt_name, ("document", "passage", "corpus"))
        return embed_all([text + t for t in inputs])

    def similarity(self, a, b):
        from sentence_transformers.util import cos_sim

        return cos_sim(a, b)

    def similarity_pairwise(self, a, b):
        from sentence_transformers.util import pairwise_cos_sim

        return pairwise_cos_sim(a, b)
