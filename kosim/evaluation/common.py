"""What every evaluator shares: input checks, similarity names, metric keys, and encoding each distinct text once."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kosim.similarity import resolve_similarity
from kosim.utils.checks import check_batch_size, check_texts, check_truncate_dim

__all__ = [
    "ALL_SIMILARITIES",
    "check_batch_size",
    "check_texts",
    "check_truncate_dim",
    "SimilarityChoice",
    "encode_columns",
    "encode_role",
    "encode_unique",
    "metric_key",
    "resolve_main_similarity",
    "resolve_similarity_fns",
]

# Report order, the same as sentence-transformers' list of names.
ALL_SIMILARITIES: tuple[str, ...] = ("cosine", "euclidean", "manhattan", "dot")


def resolve_similarity_fns(similarity_fns: Sequence[str] | str | None) -> list[str]:
    """Canonical, de-duplicated similarity names in the given order; all four when None."""
    if similarity_fns is None:
        return list(ALL_SIMILARITIES)
    if isinstance(similarity_fns, str):
        similarity_fns = [similarity_fns]
    names: list[str] = []
    for fn in similarity_fns:
        canonical = resolve_similarity(fn)
        if canonical not in names:
            names.append(canonical)
    if not names:
        raise ValueError("similarity_fns must name at least one similarity function")
    return names


def resolve_main_similarity(main_similarity: str | None, similarity_fns: list[str]) -> str:
    """The similarity behind the primary metric: ``main_similarity`` (which must be computed), else ``"cosine"``
    when it is among ``similarity_fns``, else the first of them."""
    if main_similarity is None:
        return "cosine" if "cosine" in similarity_fns else similarity_fns[0]
    main = resolve_similarity(main_similarity)
    if main not in similarity_fns:
        raise ValueError(f"main_similarity {main!r} is not among similarity_fns {similarity_fns}")
    return main


class SimilarityChoice:
    """Which similarities an evaluator computes and which one is its primary metric, by sentence-transformers' rules.

    The similarities are ``similarity_fns``; else ``[main_similarity]`` when that is given; else the model's own
    ``similarity_fn_name`` at each call (cosine for a model without one). The primary one is ``main_similarity``;
    else ``"max"`` (the best of them) when several are computed; else the only one.
    """

    def __init__(self, similarity_fns: Sequence[str] | str | None, main_similarity: str | None) -> None:
        self.configured = None if similarity_fns is None else resolve_similarity_fns(similarity_fns)
        self.main = (
            None if main_similarity is None else resolve_similarity(getattr(main_similarity, "value", main_similarity))
        )
        if self.configured is None and self.main is not None:
            self.configured = [self.main]
        if self.main is not None and self.main not in self.configured:
            raise ValueError(f"main_similarity {self.main!r} is not among similarity_fns {self.configured}")
        self._last: list[str] | None = None

    def for_model(self, model: Any) -> list[str]:
        """The similarities of a call on ``model`` (remembered for ``current``)."""
        own = getattr(model, "similarity_fn_name", None) or "cosine"
        self._last = self.configured or [resolve_similarity(getattr(own, "value", own))]
        return self._last

    @property
    def current(self) -> list[str]:
        """The configured similarities, else those of the last call (cosine before a first one)."""
        return self.configured or self._last or ["cosine"]

    @property
    def primary(self) -> str:
        """The similarity of the primary metric, or ``"max"``."""
        if self.main is not None:
            return self.main
        return "max" if len(self.current) > 1 else self.current[0]


def metric_key(name: str, metric: str) -> str:
    """A result key as sentence-transformers writes it: ``"{name}_{metric}"``, or just ``metric`` without a name."""
    return f"{name}_{metric}" if name else metric


def _to_float_tensor(embeddings: Any) -> Tensor:
    if isinstance(embeddings, Tensor):
        tensor = embeddings.detach().cpu()
    else:
        tensor = torch.as_tensor(np.asarray(embeddings))
    if not tensor.is_floating_point() or tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.float()
    return tensor


def progress_kwargs(encode: Any, show_progress_bar: bool | None) -> dict[str, bool]:
    """The progress-bar keyword for ``encode``: kosim's ``progress``, sentence-transformers' ``show_progress_bar``.

    Empty when ``show_progress_bar`` is None or the method takes neither, so any ``encode(texts, batch_size=...)``
    works as a model.
    """
    if show_progress_bar is None:
        return {}
    try:
        params = inspect.signature(encode).parameters
    except (TypeError, ValueError):
        return {}
    for name in ("progress", "show_progress_bar"):
        if name in params:
            return {name: bool(show_progress_bar)}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return {"show_progress_bar": bool(show_progress_bar)}  # a duck-typed model: sentence-transformers' name
    return {}


def encode_unique(
    model: Any,
    texts: list[str],
    batch_size: int,
    show_progress_bar: bool | None = None,
    pool: Any = None,
) -> tuple[list[str], Tensor]:
    """Encode each distinct text once with ``model.encode`` and return ``(unique_texts, embeddings [n_unique, dim])``.

    Evaluation sets repeat sentences a lot (KorSTS, NLI triplets), so encoding the union once saves time and makes a
    sentence's embedding identical wherever it appears. ``show_progress_bar`` is forwarded through
    :func:`progress_kwargs`; ``pool`` (an ``EncodePool`` or ``RankShards()`` from :mod:`kosim.encode_pool`) is
    passed to the encode when not None.
    """
    return _encode_unique_with(model.encode, texts, batch_size, show_progress_bar, pool)


def _encode_unique_with(
    encode: Any, texts: list[str], batch_size: int, show_progress_bar: bool | None, pool: Any = None
) -> tuple[list[str], Tensor]:
    unique = list(dict.fromkeys(texts))
    kwargs: dict[str, Any] = {"batch_size": batch_size, **progress_kwargs(encode, show_progress_bar)}
    if pool is not None:
        kwargs["pool"] = pool
    embeddings = _to_float_tensor(encode(unique, **kwargs))
    if embeddings.dim() != 2 or embeddings.shape[0] != len(unique):
        raise ValueError(
            f"model.encode returned shape {tuple(embeddings.shape)} for {len(unique)} texts; "
            f"expected [{len(unique)}, dim]"
        )
    return unique, embeddings


def encode_columns(
    model: Any,
    columns: Sequence[list[str]],
    batch_size: int,
    show_progress_bar: bool | None = None,
    pool: Any = None,
) -> list[Tensor]:
    """One ``[n, dim]`` embedding tensor per column of ``n`` texts, with every distinct text encoded once."""
    unique, embeddings = encode_unique(
        model, [text for column in columns for text in column], batch_size, show_progress_bar, pool
    )
    position = {text: i for i, text in enumerate(unique)}
    return [embeddings[[position[text] for text in column]] for column in columns]  # each [n, dim]


def encode_role(
    model: Any,
    texts: list[str],
    role: str | None,
    batch_size: int,
    show_progress_bar: bool | None = None,
    pool: Any = None,
) -> Tensor:
    """``[len(texts), dim]`` float embeddings, each distinct text encoded once, with the model's ``encode_query``
    (``role="query"``) or ``encode_document`` (``"document"``) when it has them, as sentence-transformers'
    evaluators do; plain ``encode`` otherwise."""
    method = (getattr(model, f"encode_{role}", None) if role else None) or model.encode
    unique, embeddings = _encode_unique_with(method, texts, batch_size, show_progress_bar, pool)
    if len(unique) == len(texts):
        return embeddings
    position = {text: i for i, text in enumerate(unique)}
    return embeddings[[position[text] for text in texts]]
