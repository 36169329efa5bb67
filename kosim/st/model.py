"""`SentenceTransformer`: sentence-transformers' model class and its `encode` keywords, on kosim's SentenceEncoder.

A subclass, so a `SentenceTransformer` goes wherever a `SentenceEncoder` goes (kosim's Trainer, evaluators,
mining): `encode` takes sentence-transformers' keywords and, for kosim's own callers, kosim's (`normalize`,
`dtype`, `to`, `progress`, `chunk_size`). Every other argument raises a TypeError naming it.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kosim.model import SentenceEncoder
from kosim.nn import resolve_model_dir
from kosim.similarity import resolve_similarity
from kosim.st.models import encoder_parts
from kosim.st_directory import read_directory
from kosim.utils.checks import check_truncate_dim
from kosim.utils.device import resolve_device
from kosim.utils.suggest import did_you_mean

__all__ = ["SentenceTransformer", "core_encode_supports"]

# kosim's own encode keywords, accepted so that kosim's internals (mining, GIST guides) can call an ST-face model
CORE_KEYWORDS = ("normalize", "dtype", "to", "progress", "chunk_size", "pool")
OUTPUT_VALUES = {"sentence_embedding": "sentence", "token_embeddings": "token"}
PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")

# constructor arguments kosim has no equivalent for: name -> the value that means "not used"
_UNSUPPORTED_INIT = {
    "cache_folder": None,
    "revision": None,
    "token": None,
    "use_auth_token": None,
    "model_kwargs": None,
    "tokenizer_kwargs": None,
    "config_kwargs": None,
    "model_card_data": None,
    "backend": "torch",
}


def core_encode_supports(name: str) -> bool:
    """Whether kosim's `SentenceEncoder.encode` takes the keyword `name` (some options arrive in later versions)."""
    return name in inspect.signature(SentenceEncoder.encode).parameters


def _refuse(kwargs: dict[str, Any], where: str, choices: Sequence[str]) -> None:
    if kwargs:
        name = next(iter(kwargs))
        raise TypeError(
            f"{where} got argument(s) {sorted(kwargs)} that kosim.st does not support{did_you_mean(name, choices)}"
        )


class SentenceTransformer(SentenceEncoder):
    """sentence-transformers' `SentenceTransformer(model_name_or_path, ...)`: loads a sentence-transformers
    directory (or a plain transformers checkpoint) with kosim's loader; identical embeddings.

    `prompts` given here replace the saved ones and `default_prompt_name` must be one of them (a ValueError
    otherwise, as in sentence-transformers); `device=None` picks CUDA when there is one. `modules=[...]` builds
    the model from `kosim.st.models` (a Transformer, a Pooling, then Dense / Normalize modules). The hub /
    download options (`cache_folder`, `revision`, `token`, `*_kwargs`, `backend`) are refused by name.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        modules: Sequence[Any] | None = None,
        device: str | torch.device | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        similarity_fn_name: str | None = None,
        truncate_dim: int | None = None,
        trust_remote_code: bool = False,
        local_files_only: bool = False,
        **kwargs: Any,
    ) -> None:
        for name, unused in _UNSUPPORTED_INIT.items():
            if name in kwargs and kwargs[name] != unused:
                raise TypeError(f"SentenceTransformer: {name}={kwargs[name]!r} is not supported by kosim.st")
            kwargs.pop(name, None)
        _refuse(kwargs, "SentenceTransformer()", ("model_name_or_path", "device", "prompts", "truncate_dim"))
        if modules is not None:
            if model_name_or_path is not None:
                raise ValueError("SentenceTransformer: give model_name_or_path or modules, not both")
            parts = encoder_parts(modules)
        elif model_name_or_path is None:
            raise ValueError("SentenceTransformer needs model_name_or_path or modules (kosim.st builds no empty model)")
        else:
            model_dir = resolve_model_dir(model_name_or_path, trust_remote_code=trust_remote_code)
            parts = read_directory(Path(model_dir), trust_remote_code=trust_remote_code)
        if prompts is not None:
            parts["prompts"] = dict(prompts)
        if default_prompt_name is not None:
            parts["default_prompt_name"] = default_prompt_name
        if similarity_fn_name is not None:
            parts["similarity_fn_name"] = similarity_fn_name
        name = parts.get("default_prompt_name")
        if name is not None and name not in (parts.get("prompts") or {}):
            raise ValueError(
                f"default_prompt_name {name!r} is not one of the prompts {sorted(parts.get('prompts') or {})}"
            )
        if truncate_dim is not None:  # the caller's wins over a saved one
            parts["truncate_dim"] = check_truncate_dim(truncate_dim)
        super().__init__(**parts)
        self.eval().to(resolve_device(device))

    # ----------------------------------------------------------------- sentence-transformers' attributes
    @property
    def similarity_fn_name(self) -> str:
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: Any) -> None:
        """Checked when assigned (a bad name fails here, not at the next `similarity` call)."""
        self._similarity_fn_name = resolve_similarity(getattr(value, "value", value))

    def get_sentence_embedding_dimension(self) -> int:
        """The embedding size `encode` returns: the model's, or `truncate_dim` when that is smaller."""
        dim = self.embedding_dim
        return dim if self.truncate_dim is None else min(dim, self.truncate_dim)

    get_embedding_dimension = get_sentence_embedding_dimension  # sentence-transformers 6's name

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """sentence-transformers' `tokenize`: `input_ids` / `attention_mask` (/ `token_type_ids`) `[n, longest]`,
        right-padded with the pad token, truncated to `max_seq_length`."""
        ids = self.tokenizer(list(texts))
        longest = max((len(seq) for seq in ids), default=0)
        input_ids = torch.full((len(ids), longest), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(ids), longest), dtype=torch.long)
        for i, seq in enumerate(ids):
            input_ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[i, : len(seq)] = 1
        out = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in getattr(self.tokenizer.hf, "model_input_names", ()):
            out["token_type_ids"] = torch.zeros_like(input_ids)
        return out

    # ----------------------------------------------------------------- encode
    @torch.no_grad()
    def encode(
        self,
        sentences: str | Sequence[str],
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: str | None = "sentence_embedding",
        precision: str = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | torch.device | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        **kwargs: Any,
    ) -> np.ndarray | Tensor | list[Tensor]:
        """sentence-transformers' `encode`: numpy `[n, dim]` by default (`[dim]` for one str), a tensor on the
        model's device with `convert_to_tensor`, a list of `[dim]` tensors with both conversions off.

        `device` moves the model there first (as sentence-transformers does). `truncate_dim` (else the model's),
        `precision` and `output_value="token_embeddings"` are kosim's `encode(truncate_dim=, precision=, output=)`.
        """
        core = {k: kwargs.pop(k) for k in CORE_KEYWORDS if k in kwargs}
        _refuse(kwargs, "encode()", tuple(inspect.signature(SentenceTransformer.encode).parameters))
        if isinstance(device, (list, tuple)):  # sentence-transformers 5+: a pool on these devices for this call
            core["devices"], device = list(device), None
        if device is not None:
            self.to(resolve_device(device))
        if output_value not in OUTPUT_VALUES:
            raise ValueError(
                f"output_value must be one of {list(OUTPUT_VALUES)} in kosim.st, got {output_value!r}"
                + ("" if output_value is not None else " (None, every output at once, is not supported)")
            )
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        as_tensor = bool(convert_to_tensor) or not convert_to_numpy
        core.setdefault("to", "torch" if as_tensor or output_value == "token_embeddings" else "numpy")
        core.setdefault("normalize", bool(normalize_embeddings))
        if show_progress_bar is not None:
            core.setdefault("progress", bool(show_progress_bar))
        truncate_dim = check_truncate_dim(truncate_dim if truncate_dim is not None else self.truncate_dim)
        for name, value, default in (
            ("truncate_dim", truncate_dim, None),
            ("precision", precision, "float32"),
            ("output", OUTPUT_VALUES[output_value], "sentence"),
        ):
            if value != default:
                if not core_encode_supports(name):
                    raise ValueError(f"encode({name}=...) needs kosim's SentenceEncoder.encode({name}=)")
                core[name] = value
        out = super().encode(sentences, batch_size=batch_size, prompt=prompt, prompt_name=prompt_name, **core)
        if not as_tensor or core["to"] != "torch" or output_value == "token_embeddings":
            return out
        out = out.to(self.device)
        if convert_to_tensor or isinstance(sentences, str):
            return out
        return list(out)  # sentence-transformers' list of [dim] tensors

    def start_multi_process_pool(self, target_devices: Sequence[str] | None = None) -> Any:
        """Worker processes for `encode(..., pool=pool)`: kosim's `EncodePool` (all CUDA devices, else CPU workers)."""
        from kosim.encode_pool import EncodePool

        return EncodePool(self, target_devices)

    @staticmethod
    def stop_multi_process_pool(pool: Any) -> None:
        pool.close()

    def encode_multi_process(self, sentences: Sequence[str], pool: Any, **kwargs: Any) -> np.ndarray:
        """Deprecated in sentence-transformers (and here): `encode(sentences, pool=pool, ...)`."""
        import warnings

        warnings.warn("encode_multi_process is deprecated: call encode(..., pool=pool)", DeprecationWarning, 2)
        return self.encode(sentences, pool=pool, **kwargs)

    def encode_query(self, sentences: str | Sequence[str], **kwargs: Any) -> np.ndarray | Tensor | list[Tensor]:
        """`encode` with the model's "query" prompt (none when it has none); an explicit prompt wins."""
        return self.encode(sentences, **self._role_prompt(kwargs, ("query",)))

    def encode_document(self, sentences: str | Sequence[str], **kwargs: Any) -> np.ndarray | Tensor | list[Tensor]:
        """`encode` with the model's first prompt of "document", "passage", "corpus" (none when it has none)."""
        return self.encode(sentences, **self._role_prompt(kwargs, ("document", "passage", "corpus")))

    # ----------------------------------------------------------------- save
    def save(
        self,
        path: str | os.PathLike,
        model_name: str | None = None,
        create_model_card: bool = True,
        train_datasets: list[str] | None = None,
        safe_serialization: bool = True,
        **kwargs: Any,
    ) -> Path:
        """Write a sentence-transformers directory (safetensors, with kosim's model card)."""
        _refuse(kwargs, "save()", ("path", "model_name", "create_model_card", "train_datasets", "safe_serialization"))
        for name, value, default in (
            ("model_name", model_name, None),
            ("create_model_card", create_model_card, True),
            ("train_datasets", train_datasets, None),
            ("safe_serialization", safe_serialization, True),
        ):
            if value != default:
                raise TypeError(f"save(): {name}={value!r} is not supported by kosim.st")
        return super().save(path)

    def save_pretrained(self, path: str | os.PathLike, **kwargs: Any) -> Path:
        """sentence-transformers' alias of `save`."""
        return self.save(path, **kwargs)

    def fit(self, train_objectives: Sequence[tuple[Any, Any]], **kwargs: Any) -> None:
        """sentence-transformers' legacy training loop over `(DataLoader of InputExample, loss)` pairs
        (kosim.st.fit: the same keywords and defaults, on kosim's Trainer)."""
        from kosim.st.fit import fit

        fit(self, train_objectives, **kwargs)
