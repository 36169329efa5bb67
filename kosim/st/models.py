"""`kosim.st.models`: sentence-transformers' modules for `SentenceTransformer(modules=[...])`.

    from kosim.st import SentenceTransformer, models    # was: from sentence_transformers import ...
    word = models.Transformer("klue/roberta-base", max_seq_length=128)
    pooling = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[word, pooling, models.Dense(768, 256), models.Normalize()])

kosim's SentenceEncoder is a Transformer, then one Pooling, then any Dense / Normalize modules in order: those
are what `modules=[...]` may hold. `Pooling`, `Dense` and `Normalize` are kosim's own modules with
sentence-transformers' constructors; `Transformer` loads kosim's encoder and tokenizer of a checkpoint. An
option kosim does not implement, another module type or another order raises an error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from kosim import pooling as core
from kosim.nn import resolve_model_dir
from kosim.st_directory import load_transformer
from kosim.st_format import (
    LEGACY_POOLING_KEYS,
    SENTENCE_EMBEDDING,
    TRANSFORMER_DEFAULT_ONLY,
    TRANSFORMER_LOADER_KWARGS,
    check_transformer_config,
)
from kosim.utils.suggest import did_you_mean

__all__ = ["Dense", "Normalize", "Pooling", "Transformer", "encoder_parts"]

# sentence-transformers 6's keyword-only Transformer options, each accepted at its "off" value only
_TRANSFORMER_OPTIONS = tuple(k for k in (*TRANSFORMER_DEFAULT_ONLY, *TRANSFORMER_LOADER_KWARGS) if k != "cache_dir")


class Transformer(nn.Module):
    """sentence-transformers' `models.Transformer`: the checkpoint's encoder (kosim's own for BERT / RoBERTa /
    XLM-R, transformers' AutoModel otherwise) and its tokenizer, loaded now.

    `max_seq_length=None` takes the tokenizer's `model_max_length`, capped at 512 and the position table.
    `model_args` / `tokenizer_args` / `config_args` (and sentence-transformers 6's `model_kwargs` /
    `processor_kwargs` / `config_kwargs`) may only hold `trust_remote_code`; every other option is accepted
    only at the value that leaves the model unchanged, else a ValueError names it.
    """

    def __init__(
        self,
        model_name_or_path: str,
        max_seq_length: int | None = None,
        model_args: dict[str, Any] | None = None,
        tokenizer_args: dict[str, Any] | None = None,
        config_args: dict[str, Any] | None = None,
        cache_dir: str | None = None,
        do_lower_case: bool = False,
        tokenizer_name_or_path: str | None = None,
        backend: str = "torch",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        for name in kwargs:
            if name not in _TRANSFORMER_OPTIONS:
                choices = (*_TRANSFORMER_OPTIONS, "max_seq_length", "do_lower_case", "tokenizer_name_or_path")
                raise TypeError(f"Transformer() got an unexpected argument {name!r}{did_you_mean(name, choices)}")
        options = {
            "max_seq_length": max_seq_length,
            "do_lower_case": do_lower_case,
            "model_args": model_args,
            "tokenizer_args": tokenizer_args,
            "config_args": config_args,
            "cache_dir": cache_dir,
            "backend": backend,
            **kwargs,
        }
        checked = check_transformer_config(options, "Transformer()", error=ValueError)
        trust_remote_code = any(
            bool((options.get(key) or {}).get("trust_remote_code", False)) for key in TRANSFORMER_LOADER_KWARGS
        )
        model_dir = resolve_model_dir(model_name_or_path, trust_remote_code=trust_remote_code)
        tokenizer_dir = None
        if tokenizer_name_or_path is not None:
            tokenizer_dir = resolve_model_dir(tokenizer_name_or_path, trust_remote_code=trust_remote_code)
        self.encoder, self.text_tokenizer = load_transformer(
            model_dir, trust_remote_code=trust_remote_code, tokenizer_dir=tokenizer_dir, **checked
        )

    @property
    def tokenizer(self):
        """The transformers tokenizer (as in sentence-transformers); kosim's `TextTokenizer` wraps it."""
        return self.text_tokenizer.hf

    @property
    def max_seq_length(self) -> int:
        return self.text_tokenizer.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        limit = self.encoder.max_sequence_length
        if type(value) is not int or not 2 <= value <= limit:
            raise ValueError(f"max_seq_length must be an int in [2, {limit}], got {value!r}")
        self.text_tokenizer.max_seq_length = value

    @property
    def do_lower_case(self) -> bool:
        return self.text_tokenizer.do_lower_case

    def get_max_seq_length(self) -> int:
        return self.max_seq_length

    def get_word_embedding_dimension(self) -> int:
        """The width of the token embeddings: the encoder's hidden size."""
        return int(self.encoder.hidden_size)

    get_embedding_dimension = get_word_embedding_dimension  # sentence-transformers 6's name

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a kosim.st Transformer is not called on its own: put it in SentenceTransformer(modules=[...])")


def _pooling_modes(pooling_mode: Any, flags: dict[str, bool | None]) -> tuple[str, ...]:
    """sentence-transformers 6's rule: `pooling_mode` (a name or a sequence of names, in that order), else the
    legacy flags given (those set, in the fixed order; mean when none is), else mean."""
    given = {key: value for key, value in flags.items() if value is not None}
    from_flags = tuple(mode for key, mode in LEGACY_POOLING_KEYS.items() if given.get(key)) or ("mean",)
    if pooling_mode is None:
        return from_flags if given else ("mean",)
    modes = (pooling_mode,) if isinstance(pooling_mode, str) else tuple(pooling_mode)
    if given and modes != from_flags:
        raise ValueError(
            f"Pooling: pooling_mode={pooling_mode!r} contradicts {sorted(given)}: give pooling_mode or the flags"
        )
    return modes


class Pooling(core.Pooling):
    """sentence-transformers' `models.Pooling(word_embedding_dimension, pooling_mode, pooling_mode_*_token(s),
    include_prompt)`, as kosim's Pooling (several modes are concatenated in the given order).

    The legacy `pooling_mode_*` flags follow sentence-transformers 6: the modes whose flag is True, and mean
    only when none is (sentence-transformers 5 and earlier also kept mean on unless `pooling_mode_mean_tokens`
    was set to False). `embedding_dimension` is sentence-transformers 6's name for the first argument.
    """

    def __init__(
        self,
        word_embedding_dimension: int | None = None,
        pooling_mode: str | Sequence[str] | None = None,
        pooling_mode_cls_token: bool | None = None,
        pooling_mode_max_tokens: bool | None = None,
        pooling_mode_mean_tokens: bool | None = None,
        pooling_mode_mean_sqrt_len_tokens: bool | None = None,
        pooling_mode_weightedmean_tokens: bool | None = None,
        pooling_mode_lasttoken: bool | None = None,
        include_prompt: bool = True,
        *,
        embedding_dimension: int | None = None,
    ) -> None:
        if (word_embedding_dimension is None) == (embedding_dimension is None):
            raise TypeError("Pooling() needs word_embedding_dimension (or embedding_dimension), exactly one of them")
        dim = word_embedding_dimension if word_embedding_dimension is not None else embedding_dimension
        if type(dim) is not int or dim < 1:
            raise ValueError(f"Pooling: word_embedding_dimension must be a positive int, got {dim!r}")
        flags = {
            "pooling_mode_cls_token": pooling_mode_cls_token,
            "pooling_mode_max_tokens": pooling_mode_max_tokens,
            "pooling_mode_mean_tokens": pooling_mode_mean_tokens,
            "pooling_mode_mean_sqrt_len_tokens": pooling_mode_mean_sqrt_len_tokens,
            "pooling_mode_weightedmean_tokens": pooling_mode_weightedmean_tokens,
            "pooling_mode_lasttoken": pooling_mode_lasttoken,
        }
        super().__init__(dim, _pooling_modes(pooling_mode, flags), include_prompt=bool(include_prompt))

    @property
    def word_embedding_dimension(self) -> int:
        return self.dim

    @property
    def pooling_output_dimension(self) -> int:
        return self.output_dim

    def get_pooling_mode_str(self) -> str:
        """The modes joined by "+" (e.g. "mean", "cls+max"), as sentence-transformers names them."""
        return "+".join(self.modes)

    def get_sentence_embedding_dimension(self) -> int:
        return self.output_dim

    get_embedding_dimension = get_sentence_embedding_dimension  # sentence-transformers 6's name


def _check_feature(module: str, name: str, value: str | None) -> None:
    if value not in (None, SENTENCE_EMBEDDING):
        raise ValueError(
            f"{module}: {name}={value!r} is not supported by kosim (only {SENTENCE_EMBEDDING!r}: the module acts on "
            "the sentence embedding)"
        )


_TANH = nn.Tanh()


def _activation_name(activation: nn.Module | None) -> str:
    """The registry name of a Dense activation module; one kosim cannot rebuild from its name is refused."""
    if activation is None:
        return "torch.nn.modules.linear.Identity"
    name = f"{type(activation).__module__}.{type(activation).__qualname__}"
    if name not in core.DENSE_ACTIVATIONS:
        raise ValueError(
            f"Dense: activation_function {activation!r} is not supported by kosim "
            f"(supported: {', '.join(n.rsplit('.', 1)[-1] for n in core.DENSE_ACTIVATIONS)}, or None)"
        )
    if repr(activation) != repr(core.DENSE_ACTIVATIONS[name]()):
        raise ValueError(
            f"Dense: activation_function {activation!r} has arguments the saved config cannot hold (its name only)"
        )
    return name


class Dense(core.Dense):
    """sentence-transformers' `models.Dense(in_features, out_features, bias, activation_function, init_weight,
    init_bias, module_input_name, module_output_name, use_residual)`: `[n, in] -> [n, out]`.

    Its layers are created in sentence-transformers' order (the Linear, then the residual projection), so the
    same `torch.manual_seed` gives both libraries the same initial weights; `init_weight [out, in]` /
    `init_bias [out]` set them explicitly. `activation_function` is an instance of Tanh (default), Identity,
    ReLU, GELU, Sigmoid or SiLU with default arguments, or None (Identity).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation_function: nn.Module | None = _TANH,
        init_weight: Tensor | None = None,
        init_bias: Tensor | None = None,
        module_input_name: str = SENTENCE_EMBEDDING,
        module_output_name: str | None = None,
        use_residual: bool = False,
    ) -> None:
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if type(value) is not int or value < 1:
                raise ValueError(f"Dense: {name} must be a positive int, got {value!r}")
        _check_feature("Dense", "module_input_name", module_input_name)
        _check_feature("Dense", "module_output_name", module_output_name)
        super().__init__(
            in_features, out_features, bool(bias), _activation_name(activation_function), use_residual=use_residual
        )
        with torch.no_grad():
            if init_weight is not None:
                if tuple(init_weight.shape) != (out_features, in_features):
                    raise ValueError(f"Dense: init_weight must be [{out_features}, {in_features}]")
                self.linear.weight.copy_(init_weight)
            if init_bias is not None and bias:
                if tuple(init_bias.shape) != (out_features,):
                    raise ValueError(f"Dense: init_bias must be [{out_features}]")
                self.linear.bias.copy_(init_bias)

    @property
    def in_features(self) -> int:
        return self.linear.in_features

    @property
    def out_features(self) -> int:
        return self.linear.out_features

    def get_sentence_embedding_dimension(self) -> int:
        return self.output_dim

    get_embedding_dimension = get_sentence_embedding_dimension  # sentence-transformers 6's name


class Normalize(core.Normalize):
    """sentence-transformers' `models.Normalize()`: L2-normalise the sentence embedding."""

    def __init__(self, module_input_name: str = SENTENCE_EMBEDDING, module_output_name: str | None = None) -> None:
        _check_feature("Normalize", "module_input_name", module_input_name)
        _check_feature("Normalize", "module_output_name", module_output_name)
        super().__init__()


def _type_name(module: Any) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def encoder_parts(modules: Sequence[nn.Module] | Mapping[str, nn.Module]) -> dict[str, Any]:
    """The `SentenceEncoder` parts (encoder, tokenizer, pooling, post) of `modules`: a Transformer, a Pooling,
    then Dense / Normalize modules; anything else raises an error naming the module by index."""
    items = list(modules.values()) if isinstance(modules, Mapping) else list(modules)
    allowed = (Transformer, core.Pooling, core.Dense, core.Normalize)
    for i, module in enumerate(items):
        if not isinstance(module, allowed):
            hint = ""
            if type(module).__module__.startswith("sentence_transformers"):
                hint = f"; import {type(module).__name__} from kosim.st.models instead"
            raise TypeError(
                f"modules[{i}]: {_type_name(module)} is not supported by kosim.st "
                f"(supported: kosim.st.models.Transformer, Pooling, Dense, Normalize){hint}"
            )
    if not items or not isinstance(items[0], Transformer):
        got = _type_name(items[0]) if items else "nothing"
        raise ValueError(f"modules[0] must be a kosim.st.models.Transformer, got {got}")
    if len(items) < 2 or not isinstance(items[1], core.Pooling):
        got = _type_name(items[1]) if len(items) > 1 else "nothing"
        raise ValueError(
            f"modules[1] must be a Pooling (kosim pools the token embeddings before any Dense / Normalize), got {got}"
        )
    transformer, pooling, post = items[0], items[1], items[2:]
    if pooling.dim != transformer.get_word_embedding_dimension():
        raise ValueError(
            f"modules[1]: Pooling word_embedding_dimension {pooling.dim} != the Transformer's "
            f"{transformer.get_word_embedding_dimension()}"
        )
    dim = pooling.output_dim
    for i, module in enumerate(post, start=2):
        if isinstance(module, (Transformer, core.Pooling)):
            raise ValueError(
                f"modules[{i}]: a second {type(module).__name__} is not supported (after the Pooling, kosim takes "
                "Dense and Normalize modules only)"
            )
        if isinstance(module, core.Dense):
            if module.linear.in_features != dim:
                raise ValueError(f"modules[{i}]: Dense in_features {module.linear.in_features} != its input {dim}")
            dim = module.output_dim
    return {"encoder": transformer.encoder, "tokenizer": transformer.text_tokenizer, "pooling": pooling, "post": post}
