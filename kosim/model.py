"""SentenceEncoder: tokenizer -> encoder -> pooling [-> dense] [-> normalize], in sentence-transformers' format."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from kosim import encode_output
from kosim.embedding_memo import EmbeddingMemo, TokenCache
from kosim.encode_output import finish, packed_batches, progress_bar, sentence_outputs, token_outputs, tokenize_fn
from kosim.nn import PackedBatch, TransformerEncoder, resolve_model_dir
from kosim.pooling import Dense, Pooling
from kosim.precision import DTYPES, autocast
from kosim.quantization import check_precision
from kosim.similarity import PAIRWISE_FUNCTIONS, SIMILARITY_FUNCTIONS, resolve_similarity, to_tensor
from kosim.st_directory import read_directory, write_directory
from kosim.tokenizer import TextTokenizer
from kosim.utils.checks import check_batch_size, check_texts, check_truncate_dim
from kosim.utils.device import resolve_device
from kosim.utils.memory import keep_freed_memory

# encode's dtypes: the compute dtypes, and int8 (int8 GEMMs with float32 elsewhere, kosim's encoder on CPU only)
ENCODE_DTYPES = {**DTYPES, "int8": torch.int8}

ENCODE_OUTPUTS = ("sentence", "token")

QUERY_PROMPT_NAMES = ("query",)
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")  # sentence-transformers' encode_document order


class SentenceEncoder(nn.Module):
    """A sentence-embedding model: `encode(texts) -> [n, dim]`.

    Composed of a `TextTokenizer`, an encoder returning packed token states `[tokens, hidden]`
    (kosim's `TransformerEncoder`, or `HFEncoder` for other architectures), a `Pooling`, and optional
    `Dense`/`Normalize` modules. `forward` takes a `PackedBatch` and is what training differentiates.
    """

    def __init__(
        self,
        encoder: nn.Module,
        tokenizer: TextTokenizer,
        pooling: Pooling | None = None,
        post: Sequence[nn.Module] = (),
        similarity_fn_name: str = "cosine",
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        truncate_dim: int | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.pooling = pooling or Pooling(encoder.hidden_size, "mean")
        if self.pooling.dim != encoder.hidden_size:
            raise ValueError(f"pooling dimension {self.pooling.dim} != encoder hidden size {encoder.hidden_size}")
        self.post = nn.ModuleList(post)
        self.similarity_fn_name = resolve_similarity(similarity_fn_name)
        self.prompts = dict(prompts or {})
        self.default_prompt_name = default_prompt_name
        self.truncate_dim = truncate_dim
        self._memo: EmbeddingMemo | None = None  # open only inside embedding_memo()
        if tokenizer.max_seq_length > encoder.max_sequence_length:
            raise ValueError(
                f"max_seq_length {tokenizer.max_seq_length} exceeds the model's position table "
                f"({encoder.max_sequence_length} tokens)"
            )

    # ----------------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def max_seq_length(self) -> int:
        return self.tokenizer.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        if not isinstance(value, int) or not 2 <= value <= self.encoder.max_sequence_length:
            raise ValueError(f"max_seq_length must be an int in [2, {self.encoder.max_sequence_length}], got {value!r}")
        self.tokenizer.max_seq_length = value

    @property
    def similarity_fn_name(self) -> str:
        """`cosine`, `dot`, `euclidean` or `manhattan` (aliases and sentence-transformers' enum accepted)."""
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: Any) -> None:
        self._similarity_fn_name = resolve_similarity(getattr(value, "value", value))  # an Enum gives its value

    @property
    def default_prompt_name(self) -> str | None:
        """The key of `prompts` that `encode` uses when given no prompt (None: no prompt)."""
        return self._default_prompt_name

    @default_prompt_name.setter
    def default_prompt_name(self, value: str | None) -> None:
        if value is not None and value not in self.prompts:
            from kosim.utils.suggest import did_you_mean

            raise ValueError(
                f"default_prompt_name {value!r} is not one of the model's prompts {sorted(self.prompts)}"
                + (did_you_mean(value, self.prompts) if isinstance(value, str) else "")
            )
        self._default_prompt_name = value

    @property
    def truncate_dim(self) -> int | None:
        """`encode`'s default `truncate_dim`: keep the first dimensions of each embedding (None: all of them)."""
        return self._truncate_dim

    @truncate_dim.setter
    def truncate_dim(self, value: int | None) -> None:
        self._truncate_dim = self._check_truncate_dim(value)

    def _check_truncate_dim(self, value: Any) -> int | None:
        value = check_truncate_dim(value)
        if value is not None and value > self.embedding_dim:
            raise ValueError(f"truncate_dim {value} exceeds the embedding dimension {self.embedding_dim}")
        return value

    @property
    def embedding_dim(self) -> int:
        dim = self.pooling.output_dim
        for module in self.post:
            if isinstance(module, Dense):
                dim = module.output_dim
        return dim

    def get_sentence_embedding_dimension(self) -> int:
        """The width `encode` returns by default: `truncate_dim` when set, else `embedding_dim` (as in
        sentence-transformers)."""
        return self.truncate_dim or self.embedding_dim

    # ----------------------------------------------------------------- forward
    def forward(self, batch: PackedBatch, prompt_length: int = 0) -> Tensor:
        """Sentence embeddings of a packed batch: `[seqs, dim]`."""
        if not isinstance(batch, PackedBatch):
            raise TypeError(
                f"SentenceEncoder is called on a PackedBatch (kosim.nn.pack_flat of token ids), got "
                f"{type(batch).__name__}; to embed texts, call model.encode(texts) (to='torch' for a tensor)"
            )
        x = self.pooling(self.encoder(batch), batch, prompt_length)  # [seqs, pooled]
        for module in self.post:
            x = module(x)
        return x

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(texts)

    # ----------------------------------------------------------------- encode
    @torch.no_grad()
    def encode(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        normalize: bool = False,
        dtype: str = "float32",
        to: str = "numpy",
        progress: bool | None = None,
        prompt: str | None = None,
        prompt_name: str | None = None,
        chunk_size: int | None = None,
        *,
        truncate_dim: int | None = None,
        precision: str = "float32",
        output: str = "sentence",
        device: str | torch.device | None = None,
        pool: Any = None,
        devices: Sequence[str | torch.device] | None = None,
    ) -> np.ndarray | Tensor | list:
        """Embed texts: a str gives `[dim]`, a list gives `[n, dim]` in input order (float32).

        Texts are tokenized and embedded chunk by chunk (`chunk_size` texts at a time, sorted by length inside
        a chunk), so memory stays bounded for any number of inputs. `dtype="bfloat16"` (or `"float16"` on
        CUDA) runs kosim's encoder on a cached copy of its weights in that dtype (other encoders under autocast)
        and still returns float32. `dtype="int8"` (CPU, kosim's encoder) runs the linear layers as int8 GEMMs
        (weights quantized per output channel once and cached, activations per token at run time) and keeps
        attention, LayerNorm and activations in float32.

        - `truncate_dim` (default: `model.truncate_dim`) keeps the first dimensions, before `normalize`.
        - `precision` quantizes the result as `kosim.quantization.quantize_embeddings` does (int8 / uint8 ranges
          from this call's embeddings; binary ones `[n, ceil(dim / 8)]`).
        - `output="token"` returns each text's token states instead, special tokens included: a list of
          `[len_i, hidden]` float32 arrays (a single array for a str), not pooled, truncated nor normalized.
        - `device` (with `to="torch"`) is where the returned tensors live; default the model's device.
        - `pool` (a `kosim.encode_pool.EncodePool`, or `RankShards()` under torchrun) encodes in several processes,
          `chunk_size` texts per job; `devices=["cuda:0", "cuda:1"]` starts a pool for this call only. The result
          equals a single-process encode.
        """
        single = isinstance(texts, str)
        items = [texts] if single else check_texts(texts, single_ok=True)
        check_batch_size(batch_size)
        if dtype not in ENCODE_DTYPES:
            raise ValueError(f"dtype must be one of {list(ENCODE_DTYPES)}, got {dtype!r}")
        if to not in ("numpy", "torch"):
            raise ValueError(f"to must be 'numpy' or 'torch', got {to!r}")
        if output not in ENCODE_OUTPUTS:
            raise ValueError(f"output must be one of {list(ENCODE_OUTPUTS)}, got {output!r}")
        check_precision(precision)
        if device is not None and to != "torch":
            raise ValueError(f"device={device!r} places the returned tensor: it needs to='torch'")
        target = resolve_device(device) if device is not None else self.device
        if output == "token" and (normalize or truncate_dim is not None):
            raise ValueError("output='token' returns raw token states: normalize and truncate_dim do not apply")
        truncate_dim = self._check_truncate_dim(truncate_dim) if truncate_dim is not None else self.truncate_dim
        prompt = self._resolve_prompt(prompt, prompt_name)

        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
        ):
            raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
        show = bool(progress if progress is not None else (len(items) >= 256 and sys.stderr.isatty()))
        dim = truncate_dim or self.embedding_dim

        def embed(texts: list[str], dim: int = dim, normalize: bool = normalize):  # [n, dim] or token states
            if pool is not None or devices is not None:
                from kosim.encode_pool import encode_with_pool

                job = {"batch_size": batch_size, "normalize": normalize, "dtype": dtype, "prompt": prompt}
                job |= {"output": output, "truncate_dim": dim if output == "sentence" else None}
                job |= {"to": "numpy", "progress": False}
                return encode_with_pool(self, texts, pool, devices, job, chunk_size, show)
            return self._encode_here(
                texts, prompt, batch_size, chunk_size, dtype, output, dim, normalize, show, to, target
            )

        memo = getattr(self, "_memo", None)
        if memo is not None and output == "sentence":  # full width, not normalized: every width reads one entry
            key, width = ("sentence", prompt, self.tokenizer.ids_key(), dtype), self.embedding_dim
            full = memo.embed(key, items, lambda texts: embed(texts, width, False))  # [n, embedding_dim]
            return finish(encode_output.truncate_normalize(full, dim, normalize), precision, to, target, single)
        return finish(embed(items), precision, to, target, single)

    def _encode_here(self, items, prompt, batch_size, chunk_size, dtype, output, dim, normalize, show, to, target):
        """encode in this process: `[n, dim]` float32 sentence embeddings (numpy), or each text's token states."""
        if self.device.type == "cpu":
            keep_freed_memory()  # each batch reuses the memory the last one freed (no page faults per batch)
        with progress_bar(show, len(items)) as bar:
            memo = getattr(self, "_memo", None)
            tokenize = tokenize_fn(self.tokenizer, prompt, memo.tokens if memo is not None else None)
            batches = packed_batches(tokenize, items, batch_size, chunk_size or 16384, self.device, bar)
            weights = self._inference_weights(dtype)
            if output == "token":
                return token_outputs(lambda b: self._token_states(b, dtype, weights), batches, len(items), to, target)
            prompt_length = self.tokenizer.prompt_length(prompt) if prompt else 0
            return sentence_outputs(
                lambda b: self._encode_batch(b, prompt_length, dtype, weights), batches, (len(items), dim), normalize
            )

    @contextlib.contextmanager
    def embedding_memo(self, tokens: TokenCache | None = None) -> Iterator[EmbeddingMemo]:
        """Inside `with model.embedding_memo():`, `encode` embeds every distinct input once (see
        `kosim.embedding_memo`): the Trainer opens one per evaluation round, shared by the validation loss and every
        evaluator. Nested uses share the outer memo; it is dropped when the outermost context closes, and forgets
        everything as soon as a weight changes inside it. `tokens`: a `TokenCache` to tokenize through (one that
        outlives the round: token ids do not depend on the weights); default a new one."""
        if getattr(self, "_memo", None) is not None:
            yield self._memo
            return
        self._memo = EmbeddingMemo(self, tokens)
        try:
            yield self._memo
        finally:
            self._memo = None

    def encode_query(
        self, texts: str | Sequence[str], progress: bool | None = None, **kwargs: Any
    ) -> np.ndarray | Tensor:
        """`encode` with the model's "query" prompt (sentence-transformers' `encode_query`).

        Takes `encode`'s arguments (`progress` named, so evaluators find kosim's progress flag); an explicit
        `prompt` / `prompt_name` wins. A model without a "query" prompt encodes with no prompt at all:
        its `default_prompt_name` does not apply here, as in sentence-transformers.
        """
        return self.encode(texts, progress=progress, **self._role_prompt(kwargs, QUERY_PROMPT_NAMES))

    def encode_document(
        self, texts: str | Sequence[str], progress: bool | None = None, **kwargs: Any
    ) -> np.ndarray | Tensor:
        """`encode` with the model's first prompt of "document", "passage", "corpus" (sentence-transformers'
        `encode_document`); no prompt when it has none of them (its `default_prompt_name` does not apply)."""
        return self.encode(texts, progress=progress, **self._role_prompt(kwargs, DOCUMENT_PROMPT_NAMES))

    def _role_prompt(self, kwargs: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
        if kwargs.get("prompt") is None and kwargs.get("prompt_name") is None:
            name = next((n for n in names if n in self.prompts), None)
            kwargs = {**kwargs, "prompt": self.prompts[name] if name is not None else "", "prompt_name": None}
        return kwargs

    def _inference_weights(self, dtype: str):
        """The encoder's inference copy of its weights for `encode` (None: run `forward` under autocast).

        kosim's encoder infers without dropout in either mode, so `encode` never switches the (shared) module
        to eval and back; other encoders run `forward`, which only eval mode makes deterministic.
        """
        if not isinstance(self.encoder, TransformerEncoder):
            if dtype == "int8":
                raise ValueError(
                    f"dtype='int8' needs kosim's own encoder (BERT/RoBERTa/XLM-R), not {type(self.encoder).__name__}"
                )
            if self.training:
                raise RuntimeError(
                    f"encode() on a {type(self.encoder).__name__} encoder needs eval mode (its dropout is on): "
                    "call model.eval() first"
                )
            return None
        torch_dtype = ENCODE_DTYPES[dtype]
        if torch_dtype == torch.float16 and self.device.type != "cuda":
            raise ValueError("float16 autocast needs a CUDA device; use bfloat16 on CPU")
        if torch_dtype == torch.int8 and self.device.type != "cpu":
            raise ValueError(f"dtype='int8' runs on CPU; this model is on {self.device} (use float16/bfloat16 there)")
        return self.encoder.inference_weights(torch_dtype)

    def _token_states(self, batch: PackedBatch, dtype: str, weights) -> Tensor:
        """The encoder's token states `[tokens, hidden]` of one packed batch in the inference dtype (no autograd)."""
        if weights is not None:
            return self.encoder.infer(batch, weights)
        with autocast(batch.input_ids.device, dtype):
            return self.encoder(batch)

    def _encode_batch(self, batch: PackedBatch, prompt_length: int, dtype: str, weights) -> Tensor:
        """Float32 embeddings `[seqs, dim]` of one packed batch, for `encode` (no autograd)."""
        tokens = self._token_states(batch, dtype, weights)  # [tokens, hidden]
        x = self.pooling(tokens, batch, prompt_length).float()  # pooling accumulates in float32
        for module in self.post:
            x = module(x)
        return x

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str:
        if prompt is not None:
            if not isinstance(prompt, str):
                raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
            return prompt
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None:
            return ""
        if name not in self.prompts:
            raise KeyError(f"prompt_name {name!r} is not one of the model's prompts {sorted(self.prompts)}")
        return self.prompts[name]

    def similarity(self, a: Any, b: Any, fn: str | None = None) -> Tensor:
        """Similarity of every embedding in `a` with every one in `b`: `[n, m]` (distances negated)."""
        name = resolve_similarity(fn) if fn is not None else self.similarity_fn_name
        return SIMILARITY_FUNCTIONS[name](to_tensor(a), to_tensor(b))

    def similarity_pairwise(self, a: Any, b: Any, fn: str | None = None) -> Tensor:
        """Similarity of `a[i]` with `b[i]`: `[n]`."""
        name = resolve_similarity(fn) if fn is not None else self.similarity_fn_name
        return PAIRWISE_FUNCTIONS[name](to_tensor(a), to_tensor(b))

    # ----------------------------------------------------------------- load / save
    @classmethod
    def load(
        cls,
        name_or_path: str | os.PathLike,
        device: str | torch.device | None = None,
        trust_remote_code: bool = False,
        truncate_dim: int | None = None,
    ) -> SentenceEncoder:
        """Load a sentence-transformers directory (3.x or newer) or a plain transformers checkpoint, in eval mode.

        A hub id is fetched through the huggingface_hub cache (honouring HF_HUB_OFFLINE). A plain transformers
        checkpoint gets mean pooling and `max_seq_length` from its tokenizer, capped at 512. Training switches
        the model to training mode itself (`Trainer`), as in sentence-transformers. `truncate_dim` sets
        `model.truncate_dim` (the default of `encode`), over the one saved in the directory (saved when set, as
        sentence-transformers 6 does).
        """
        model_dir = resolve_model_dir(name_or_path, trust_remote_code=trust_remote_code)
        parts = read_directory(model_dir, trust_remote_code=trust_remote_code)
        if truncate_dim is not None:  # the caller's wins over the saved one
            parts["truncate_dim"] = truncate_dim
        model = cls(**parts).eval()
        return model.to(device) if device is not None else model

    def save(self, path: str | os.PathLike, model_card: str | None = None) -> Path:
        """Write a directory that sentence-transformers and kosim load with identical embeddings."""
        return write_directory(self, Path(path), model_card)
