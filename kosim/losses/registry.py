"""Explicit name -> loss class registry, so configs and the CLI can name a loss with a string."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from torch import nn

from kosim.losses.angle import AnglELoss
from kosim.losses.batch_hard import (
    BatchAllTripletLoss,
    BatchHardSoftMarginTripletLoss,
    BatchHardTripletLoss,
    BatchSemiHardTripletLoss,
)
from kosim.losses.contrastive import ContrastiveLoss, OnlineContrastiveLoss
from kosim.losses.cosent import CoSENTLoss
from kosim.losses.cosine import CosineSimilarityLoss
from kosim.losses.distill import MarginMSELoss, MSELoss
from kosim.losses.gist import GISTEmbedLoss
from kosim.losses.gte import DirectionalRankingLoss
from kosim.losses.matryoshka import MatryoshkaLoss
from kosim.losses.mnrl import MultipleNegativesRankingLoss
from kosim.losses.mnrl_symmetric import MultipleNegativesSymmetricRankingLoss
from kosim.losses.softmax import SoftmaxLoss
from kosim.losses.triplet import TripletLoss
from kosim.utils.suggest import did_you_mean

__all__ = ["LOSSES", "MODEL_ARGUMENTS", "build_loss", "check_loss"]

LOSSES: dict[str, type[nn.Module]] = {
    "MultipleNegativesRankingLoss": MultipleNegativesRankingLoss,
    "CosineSimilarityLoss": CosineSimilarityLoss,
    "CoSENTLoss": CoSENTLoss,
    "MatryoshkaLoss": MatryoshkaLoss,
    "MarginMSELoss": MarginMSELoss,
    "MSELoss": MSELoss,  # labels hold the teacher's embeddings, or the Trainer's `teacher` model encodes them
    "MultipleNegativesSymmetricRankingLoss": MultipleNegativesSymmetricRankingLoss,
    "DirectionalRankingLoss": DirectionalRankingLoss,
    "TripletLoss": TripletLoss,
    "ContrastiveLoss": ContrastiveLoss,
    "OnlineContrastiveLoss": OnlineContrastiveLoss,
    "AnglELoss": AnglELoss,
    "BatchHardTripletLoss": BatchHardTripletLoss,
    "BatchSemiHardTripletLoss": BatchSemiHardTripletLoss,
    "BatchAllTripletLoss": BatchAllTripletLoss,
    "BatchHardSoftMarginTripletLoss": BatchHardSoftMarginTripletLoss,
    "GISTEmbedLoss": GISTEmbedLoss,  # the Trainer's `guide` model supplies the guide embeddings
    "SoftmaxLoss": SoftmaxLoss,  # embedding_dimension comes from the model (MODEL_ARGUMENTS)
    # lowercase aliases
    "mnrl": MultipleNegativesRankingLoss,
    "multiple_negatives_ranking": MultipleNegativesRankingLoss,
    "cosine": CosineSimilarityLoss,
    "cosine_similarity": CosineSimilarityLoss,
    "cosent": CoSENTLoss,
    "matryoshka": MatryoshkaLoss,
    "margin_mse": MarginMSELoss,
    "marginmse": MarginMSELoss,
    "mse": MSELoss,
    "mnrl_symmetric": MultipleNegativesSymmetricRankingLoss,
    "gte": DirectionalRankingLoss,
    "improved_contrastive": DirectionalRankingLoss,
    "triplet": TripletLoss,
    "contrastive": ContrastiveLoss,
    "online_contrastive": OnlineContrastiveLoss,
    "angle": AnglELoss,
    "batch_hard_triplet": BatchHardTripletLoss,
    "batch_semi_hard_triplet": BatchSemiHardTripletLoss,
    "batch_all_triplet": BatchAllTripletLoss,
    "batch_hard_soft_margin_triplet": BatchHardSoftMarginTripletLoss,
    "gist": GISTEmbedLoss,
    "softmax": SoftmaxLoss,
}

#: Constructor arguments taken from the model the loss trains, never from a config: class -> {argument: attribute}.
MODEL_ARGUMENTS: dict[type[nn.Module], dict[str, str]] = {SoftmaxLoss: {"embedding_dimension": "embedding_dim"}}


def _lookup(name: str) -> type[nn.Module]:
    if not isinstance(name, str):
        raise TypeError(f"loss name must be a str, got {type(name).__name__}")
    if name in LOSSES:
        return LOSSES[name]
    lowered = {key.lower(): cls for key, cls in LOSSES.items()}
    if name.lower() in lowered:
        return lowered[name.lower()]
    # The shared "; did you mean 'x'?" hint, written as its own sentence here (the message has always read
    # "unknown loss 'x'. Did you mean 'y'? Known losses: [...]").
    hint = did_you_mean(name, LOSSES, cutoff=0.5).removeprefix("; did")
    hint = f" Did{hint}" if hint else ""
    raise ValueError(f"unknown loss {name!r}.{hint} Known losses: {sorted(LOSSES)}")


def build_loss(name: str, *, model: Any = None, **kwargs: Any) -> nn.Module:
    """Instantiate the loss registered under ``name`` (case-insensitive) with ``kwargs``.

    For Matryoshka, ``loss`` may itself be a name (built with defaults) or a mapping ``{"name": ..., **kwargs}``,
    so a whole loss stack can come from a JSON/YAML config, e.g.
    ``build_loss("matryoshka", loss={"name": "mnrl", "scale": 30}, dims=[768, 256, 64])``.
    ``model`` (the SentenceEncoder to train) supplies the arguments in :data:`MODEL_ARGUMENTS`, e.g.
    ``build_loss("SoftmaxLoss", model=model, num_labels=3)`` gets ``embedding_dimension=model.embedding_dim``.
    """
    cls = _lookup(name)
    if cls is MatryoshkaLoss and "loss" in kwargs:
        inner = kwargs["loss"]
        if isinstance(inner, str):
            kwargs["loss"] = build_loss(inner, model=model)
        elif isinstance(inner, Mapping):
            inner = dict(inner)
            if "name" not in inner:
                raise ValueError("an inner loss given as a mapping needs a 'name' key")
            kwargs["loss"] = build_loss(inner.pop("name"), model=model, **inner)
    if model is not None:
        for argument, attribute in MODEL_ARGUMENTS.get(cls, {}).items():
            if argument in kwargs:
                raise ValueError(f"{cls.__name__}: {argument} is taken from the model ({attribute}); do not give it")
            kwargs[argument] = getattr(model, attribute)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise TypeError(f"cannot build {cls.__name__} from {sorted(kwargs)}: {exc}") from exc


# Stands in for the model when a config is checked before any model is loaded.
_PLACEHOLDER_MODEL = SimpleNamespace(embedding_dim=8)


def check_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build the loss as a run would, with a placeholder for the model's arguments (a config check; the loss built
    here is thrown away). Raises the TypeError / ValueError that building the real one would."""
    return build_loss(name, model=_PLACEHOLDER_MODEL, **kwargs)
