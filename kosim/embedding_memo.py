"""EmbeddingMemo: within one evaluation round, every distinct input is embedded once.

An evaluation round embeds the same texts several times: the validation loss embeds every eval-dataset column,
then each evaluator encodes its sentences, often the same ones (KorSTS dev is both the eval dataset and the STS
evaluator's pairs). `SentenceEncoder.embedding_memo()` opens a memo for such a round; while it is open, `encode`
looks every text up under a key holding everything else that changes its embedding (the prompt; the tokenizer's
settings, `TextTokenizer.ids_key`: max_seq_length, lower-casing, truncation side, vocabulary; the compute dtype;
the output kind: only sentence embeddings are memoised) and embeds only the texts it has not seen. The memo holds
full-width embeddings before normalization: each call's `truncate_dim` (or the model's) and `normalize` are applied
to them afterwards, so a Matryoshka model's full-width validation loss and its truncated evaluators share one
embedding per text. Where the returned tensor lives (`device=`, `to=`) and its quantization (`precision`) are also
decided per call, so quantization ranges still come from that call's embeddings.

A memo never serves an embedding of other weights: it remembers every parameter's storage and version counter
(`Tensor._version`, bumped by every in-place update: optimizer steps, `load_state_dict`, `.to()`) when it is opened
and forgets everything it holds as soon as any of them changed. Closing the context drops it.

Token ids depend on nothing that training changes (only the text, the prompt, the tokenizer and its settings), so
a `TokenCache` may outlive a round: the Trainer keeps one for the whole run and hands it to every round's memo, so
an evaluator's sentences are tokenized once per run, not once per round.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np
from torch import nn

from kosim.nn.inference import weights_stamp

__all__ = ["EmbeddingMemo", "TokenCache"]


class TokenCache:
    """Token ids by `(tokenizer.ids_key(), prompt, text)`, for `encode_flat`-style calls; at most `limit` token ids
    are kept (texts beyond it are tokenized and not kept), so a huge corpus cannot fill the memory."""

    def __init__(self, limit: int = 1 << 25) -> None:
        self.limit = limit
        self.size = 0  # token ids held
        self._tables: dict[tuple, dict[str, np.ndarray]] = {}
        self._tokenizers: list = []  # keeps the tokenizers named by id() in the keys alive

    def encode_flat(self, tokenizer, prompt: str, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """What `tokenizer.encode_flat([prompt + t for t in texts])` returns: flat int64 ids `[tokens]` and each
        text's length `[texts]`; each distinct text is tokenized once over the cache's life."""
        key = (tokenizer.ids_key(), prompt)
        if key not in self._tables:
            self._tables[key] = {}
            self._tokenizers.append((tokenizer, tokenizer.hf))
        table = self._tables[key]
        missing = [t for t in dict.fromkeys(texts) if t not in table]
        new: dict[str, np.ndarray] = {}
        if missing:
            flat, lengths = tokenizer.encode_flat([prompt + t for t in missing] if prompt else missing)
            new = dict(zip(missing, np.split(flat, np.cumsum(lengths)[:-1])))
            if self.size + flat.size <= self.limit:
                table.update(new)
                self.size += flat.size
        rows = [new[t] if t in new else table[t] for t in texts]
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        return (np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)), lengths


class EmbeddingMemo:
    """Float32 embeddings by `(key, text)` for one model and one set of its weights.

    At most `limit` floats are kept (1 GiB by default): the embeddings of a call beyond it are returned and not
    kept, so a round that encodes a huge retrieval corpus holds it once, not twice.

    Attributes:
        embedded: texts embedded through the memo so far (its misses), for tests and profiles.
    """

    def __init__(self, model: nn.Module, tokens: TokenCache | None = None, limit: int = 1 << 28) -> None:
        self._model = model
        self.limit = limit
        self.size = 0  # floats held
        self.tokens = tokens if tokens is not None else TokenCache()  # the round's (or the run's) token ids
        self._stamp = weights_stamp(model.parameters())
        self._tables: dict[Hashable, dict[str, np.ndarray]] = {}
        self.embedded = 0

    def _check_weights(self) -> None:
        stamp = weights_stamp(self._model.parameters())
        if stamp != self._stamp:  # a weight changed inside the round: nothing held is valid any more
            self._tables.clear()
            self._stamp, self.size = stamp, 0

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
            self.embedded += len(missing)
            if self.size + new.size > self.limit:  # not kept: only this call reads them
                if len(missing) == len(texts):  # all distinct and new: `new` is the answer, in order
                    return new
                rows = dict(zip(missing, new))
                return np.stack([rows[t] if t in rows else table[t] for t in texts])  # [n, dim]
            table.update(zip(missing, new))
            self.size += new.size
        if not texts:
            return compute([])
        return np.stack([table[t] for t in texts])  # [n, dim]

    def __len__(self) -> int:
        """Embeddings held (over all keys)."""
        return sum(len(t) for t in self._tables.values())
