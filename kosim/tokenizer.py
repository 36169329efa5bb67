"""TextTokenizer: text -> token ids (special tokens added, truncated to `max_seq_length`), no padding."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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

    @property
    def pad_token_id(self) -> int:
        return int(self.hf.pad_token_id)

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, in order; each sequence has at most `max_seq_length` ids."""
        if self.do_lower_case:
            texts = [t.lower() for t in texts]
        out = self.hf(
            list(texts),
            add_special_tokens=True,
            truncation=True,
            max_length=self.max_seq_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return out["input_ids"]

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

        hf = AutoTokenizer.from_pretrained(str(model_dir))
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
