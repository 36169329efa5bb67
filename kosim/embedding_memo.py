"""EmbeddingMemo: within one evaluation round, every distinct input is embedded once.

An evaluation round embeds the same texts several times: the validation loss embeds every eval-dataset column,
then each evaluator encodes its sentences, often the same ones (KorSTS dev is both the eval dataset and the STS
evaluator's pairs). `SentenceEncoder.embedding_memo()` opens a memo for such a round; while it is open, `encode`
looks every text up under a key holding everything else that changes its embedding (the prompt, max_seq_length,
the compute dtype, the width after truncation and normalization; the output kind: only sentence embeddings are
memoised) and embeds only the texts it has not seen. Quantization (`precision`) is applied per call afterwards, so
its ranges still come from that call's embeddings.

A memo never serves an embedding of other weights: it remembers every parameter's storage and version counter
(`Tensor._version`, bumped by every in-place update: optimizer steps, `load_state_dict`, `.to()`) when it is opened
and forgets everything it holds as soon as any of them changed. Closing the context drops it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

import numpy as np
from torch import nn

__all__ = ["EmbeddingMemo", "weights_stamp"]


def weights_stamp(parameters: Iterable[nn.Parameter]) -> tuple:
    """What changes when any weight changes: each parameter's device, storage and in-place version counter."""
    return tuple((p.device, p.data_ptr(), p._version) for p in parameters)


class EmbeddingMemo:
    """Float32 embeddings by `(key, text)` for one model and one set of its weights.

    Attributes:
        embedded: texts embedded through the memo so far (its misses), for tests and profiles.
    """

    def __init__(self, model: nn.Module) -> None:
        self._model = model
        self._stamp = weights_stamp(model.parameters())
        self._tables: dict[Hashable, dict[str, np.ndarray]] = {}
        self.embedded = 0

    def _check_weights(self) -> None:
        stamp = weights_stamp(self._model.parameters())
        if stamp != self._stamp:  # a weight changed inside the round: nothing held is valid any more
            self._tables.clear()
            self._stamp = stamp

    def embed(self, key: Hashable, texts: list[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """`[len(texts), dim]` float32 embeddings of `texts` under `key`: the distinct texts the memo lacks are
        embedded by one `compute(missing) -> [len(missing), dim]` call (in first-seen order), the others reused."""
        self._check_weights()
        table = self._tables.setdefault(key, {})
        missing = [t for t in dict.fromkeys(texts) if t not in table]
        if missing:
            new = np.asarray(compute(missing), dtype=np.float32)  # [missing, dim]
            if new.ndim != 2 or len(new) != len(missing):
                raise ValueError(f"embedding {len(missing)} texts returned shape {new.shape}")
            table.update(zip(missing, new))
            self.embedded += len(missing)
        if not texts:
            return compute([])
        return np.stack([table[t] for t in texts])  # [n, dim]

    def __len__(self) -> int:
        """Embeddings held (over all keys)."""
        return sum(len(t) for t in self._tables.values())
