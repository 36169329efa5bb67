"""TextTokenizer: text -> token ids (special tokens added, truncated to `max_seq_length`), no padding."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kosim.st_format import CheckpointError, read_json

MAX_DEFAULT = 512


class TextTokenizer:
    """Wraps a Hugging Face fast tokenizer with sentence-transformers' `max_seq_length` and `do_lower_case`."""

    def __init__(self, hf_tokenizer, max_seq_length: int = 128, do_lower_case: bool = False):
        if not isinstance(max_seq_length, int) or max_seq_length < 2:
            raise ValueError(f"max_seq_length must be an int >= 2, got {max_seq_length!r}")
        self.hf = hf_tokenizer
        self.max_seq_length = max_seq_length
        self.do_lower_case = do_lower_case
        if hf_tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token")
        self._backend = None  # private copy of the Rust tokenizer, see `_fast_backend`
        self._backend_key = None
        self._backend_source = None

    @property
    def pad_token_id(self) -> int:
        return int(self.hf.pad_token_id)

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    def _fast_backend(self):
        """A private copy of the `tokenizers` backend set to truncate at `max_seq_length` without padding, or None.

        Calling it directly gives the ids `self.hf(texts, truncation=True, max_length=...)` gives, without the
        transformers wrapper's per-call work (and without computing offsets), and without touching the
        truncation/padding state of the shared `self.hf`. The copy is rebuilt whenever the tokenizer changes
        (`add_tokens`, a new normalizer, pre-tokenizer or post-processor), so kosim tokenizes as `save()` writes.
        """
        backend = getattr(self.hf, "backend_tokenizer", None) if getattr(self.hf, "is_fast", False) else None
        if backend is None:
            return None
        key = (
            _backend_state(backend),
            self.max_seq_length,
            getattr(self.hf, "truncation_side", "right"),
            bool(getattr(self.hf, "split_special_tokens", False)),
        )
        if self._backend is None or self._backend_source is not backend or self._backend_key != key:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_str(backend.to_str())
            tok.no_padding()
            tok.enable_truncation(self.max_seq_length, stride=0, strategy="longest_first", direction=key[2])
            tok.encode_special_tokens = key[3]
            # the source is held (not its id): a freed tokenizer's id can be reused by a new one
            self._backend, self._backend_key, self._backend_source = tok, key, backend
        return self._backend

    def ids_key(self) -> tuple:
        """Everything the ids of a text depend on, hashable: this tokenizer and its `hf` (by identity), the
        `max_seq_length`, `do_lower_case`, truncation side, `split_special_tokens` and the backend's fingerprint
        (vocabulary, added tokens, normalizer, pre-tokenizer, post-processor); a cache of ids or embeddings keys
        its entries by it, so a changed setting is another input."""
        backend = getattr(self.hf, "backend_tokenizer", None) if getattr(self.hf, "is_fast", False) else None
        return (
            id(self),
            id(self.hf),
            self.max_seq_length,
            bool(self.do_lower_case),
            getattr(self.hf, "truncation_side", "right"),
            bool(getattr(self.hf, "split_special_tokens", False)),
            None if backend is None else _backend_state(backend),
        )

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_backend"] = state["_backend_key"] = state["_backend_source"] = None  # rebuilt on demand
        return state

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, in order; each sequence has at most `max_seq_length` ids."""
        backend = self._fast_backend()
        if self.do_lower_case:
            texts = [t.lower() for t in texts]
        elif backend is not None:
            # Handing a non-ASCII str to Rust makes CPython cache a UTF-8 copy inside that str object for as long
            # as it lives (~60-100 bytes per Korean sentence), so tokenizing the caller's strings would grow the
            # caller's memory with every text ever encoded. Temporary copies take the cache with them.
            texts = [t.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass") for t in texts]
        if backend is not None:
            encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
            return [e.ids for e in encode(texts, add_special_tokens=True)]
        out = self.hf(
            list(texts),
            add_special_tokens=True,
            truncation=True,
            max_length=self.max_seq_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return out["input_ids"]

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of all texts as one flat int64 array `[tokens]`, and each text's length `[texts]`."""
        ids = self(texts)
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter((t for seq in ids for t in seq), dtype=np.int64, count=int(lengths.sum()))
        return flat, lengths

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Sequence lengths (special tokens included, truncated), e.g. for dataset statistics."""
        return [len(ids) for ids in self(texts)]

    def prompt_length(self, prompt: str) -> int:
        """Tokens a prompt occupies at the start of a sequence (its trailing special token not counted)."""
        ids = self([prompt])[0]
        if ids and ids[-1] in set(self.hf.all_special_ids):
            return len(ids) - 1
        return len(ids)

    @classmethod
    def load(cls, model_dir: Path, max_seq_length: int | None, do_lower_case: bool, position_limit: int):
        """Load the tokenizer files of `model_dir`; `max_seq_length=None` takes the tokenizer's, capped at 512."""
        from transformers import AutoTokenizer

        try:
            hf = AutoTokenizer.from_pretrained(str(model_dir))
        except Exception as exc:  # transformers and tokenizers raise anything from KeyError to TypeError here
            raise _load_error(model_dir, exc) from exc
        if max_seq_length is None:
            max_seq_length = int(min(getattr(hf, "model_max_length", MAX_DEFAULT) or MAX_DEFAULT, MAX_DEFAULT))
            max_seq_length = min(max_seq_length, position_limit)
        if max_seq_length > position_limit:
            raise ValueError(
                f"max_seq_length {max_seq_length} exceeds the model's position table ({position_limit} tokens)"
            )
        return cls(hf, max_seq_length=max_seq_length, do_lower_case=do_lower_case)

    def save(self, out_dir: Path) -> None:
        self.hf.model_max_length = self.max_seq_length
        self.hf.save_pretrained(str(out_dir))


def _backend_state(backend) -> tuple:
    """A cheap fingerprint (~10 us) of what a `tokenizers.Tokenizer` does to text: vocabulary size, added tokens,
    and the serialized normalizer / pre-tokenizer / post-processor (the full `to_str()` costs milliseconds)."""
    parts = [backend.get_vocab_size(with_added_tokens=False), repr(backend.get_added_tokens_decoder())]
    for component in (backend.normalizer, backend.pre_tokenizer, backend.post_processor):
        parts.append(None if component is None else component.__getstate__())
    return tuple(parts)


def _load_error(model_dir: Path, exc: Exception) -> CheckpointError:
    """A `CheckpointError` naming the tokenizer file that failed to load, found by parsing each on its own."""
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        if (model_dir / name).is_file():
            try:
                read_json(model_dir / name)
            except CheckpointError as err:
                return err
    if (model_dir / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        try:
            Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as err:
            return CheckpointError(f"{model_dir / 'tokenizer.json'}: not a valid tokenizer file ({err})")
    return CheckpointError(f"{model_dir}: cannot load the tokenizer ({type(exc).__name__}: {exc})")
