"""`kosim.st.losses`: sentence-transformers' `(model, ...)` loss constructors, returning kosim's losses.

kosim's losses are functions of embeddings and never hold the model, so `model` is only checked (and gives
`SoftmaxLoss` its device). What kosim does outside the loss travels with the loss for the trainer face:
`trainer_options(loss)` gives the TrainingArguments it asks for (`CachedMultipleNegativesRankingLoss`'s
`mini_batch_size`, kosim's gradient caching; `gather_across_devices=True`), `guide_model(loss)` a GIST loss's guide
(the Trainer's `guides`). An argument kosim has no equivalent for raises an error naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from kosim import losses as core
from kosim.model import SentenceEncoder

__all__ = [
    "AnglELoss",
    "BatchAllTripletLoss",
    "BatchHardSoftMarginTripletLoss",
    "BatchHardTripletLoss",
    "BatchHardTripletLossDistanceFunction",
    "BatchSemiHardTripletLoss",
    "CachedMultipleNegativesRankingLoss",
    "CoSENTLoss",
    "ContrastiveLoss",
    "CosineSimilarityLoss",
    "GISTEmbedLoss",
    "MSELoss",
    "MarginMSELoss",
    "MatryoshkaLoss",
    "MultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss",
    "OnlineContrastiveLoss",
    "SiameseDistanceMetric",
    "SoftmaxLoss",
    "TripletDistanceMetric",
    "TripletLoss",
    "guide_model",
    "trainer_options",
]


class TripletDistanceMetric:
    """sentence-transformers' distance names for `TripletLoss` (kosim takes them as strings)."""

    EUCLIDEAN = "euclidean"
    COSINE = "cosine"
    MANHATTAN = "manhattan"


class SiameseDistanceMetric:
    """sentence-transformers' distance names for `ContrastiveLoss` / `OnlineContrastiveLoss`."""

    EUCLIDEAN = "euclidean"
    MANHATTAN = "manhattan"
    COSINE_DISTANCE = "cosine"


class BatchHardTripletLossDistanceFunction:
    """sentence-transformers' distance names for the batch triplet losses."""

    cosine_distance = "cosine"
    eucledian_distance = "euclidean"  # sentence-transformers' spelling
    euclidean_distance = "euclidean"
    squared_euclidean_distance = "squared_euclidean"


_SIMILARITIES = {
    "cos_sim": "cosine",
    "pairwise_cos_sim": "cosine",
    "dot_score": "dot",
    "pairwise_dot_score": "dot",
    "euclidean_sim": "euclidean",
    "pairwise_euclidean_sim": "euclidean",
    "manhattan_sim": "manhattan",
    "pairwise_manhattan_sim": "manhattan",
}


def _similarity(fn: Callable | str) -> str:
    """kosim's similarity name for sentence-transformers' `similarity_fct` (util.cos_sim, util.dot_score, ...)."""
    if isinstance(fn, str):
        return fn
    name = getattr(fn, "__name__", None)
    if name not in _SIMILARITIES:
        raise ValueError(f"similarity_fct={fn!r} is not supported by kosim.st; use one of util.{sorted(_SIMILARITIES)}")
    return _SIMILARITIES[name]


def _check_model(model: Any, loss: str) -> None:
    if not isinstance(model, SentenceEncoder):
        raise TypeError(f"{loss}(model, ...) takes the model being trained first, got {type(model).__name__}")


def _refuse(loss: str, **options: tuple[Any, Any]) -> None:
    """Raise for any option set to something other than its only supported value: `name=(value, supported)`."""
    for name, (value, supported) in options.items():
        if value != supported:
            raise ValueError(f"{loss}: {name}={value!r} is not supported by kosim.st")


def MultipleNegativesRankingLoss(  # noqa: N802 - sentence-transformers' name
    model: SentenceEncoder,
    scale: float = 20.0,
    similarity_fct: Callable | str = "cosine",
    gather_across_devices: bool = False,
    directions: Sequence[str] = ("query_to_doc",),
    partition_mode: str = "joint",
    hardness_mode: str | None = None,
    hardness_strength: float = 0.0,
) -> nn.Module:
    """In-batch negatives ranking; `directions` / `partition_mode` / `hardness_*` give GTE's variants."""
    _check_model(model, "MultipleNegativesRankingLoss")
    similarity = _similarity(similarity_fct)
    if tuple(directions) == ("query_to_doc",) and partition_mode == "joint" and hardness_mode is None:
        return _gathered(core.MultipleNegativesRankingLoss(scale=scale, similarity=similarity), gather_across_devices)
    loss = core.DirectionalRankingLoss(
        scale=scale,
        similarity=similarity,
        directions=tuple(directions),
        partition_mode=partition_mode,
        hardness_mode=hardness_mode,
        hardness_strength=hardness_strength,
    )
    return _gathered(loss, gather_across_devices)


def CachedMultipleNegativesRankingLoss(  # noqa: N802
    model: SentenceEncoder,
    scale: float = 20.0,
    similarity_fct: Callable | str = "cosine",
    mini_batch_size: int = 32,
    gather_across_devices: bool = False,
    show_progress_bar: bool = False,
) -> nn.Module:
    """kosim's MNRL with gradient caching: the trainer face sets `TrainingArguments.mini_batch_size`."""
    _refuse("CachedMultipleNegativesRankingLoss", show_progress_bar=(show_progress_bar, False))
    if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, int) or mini_batch_size < 1:
        raise ValueError(f"mini_batch_size must be a positive int, got {mini_batch_size!r}")
    loss = MultipleNegativesRankingLoss(model, scale, similarity_fct, gather_across_devices)
    loss.st_trainer_options = {**loss.st_trainer_options, "mini_batch_size": mini_batch_size}
    return loss


def MultipleNegativesSymmetricRankingLoss(  # noqa: N802
    model: SentenceEncoder, scale: float = 20.0, similarity_fct: Callable | str = "cosine", gather_across_devices=False
) -> nn.Module:
    _check_model(model, "MultipleNegativesSymmetricRankingLoss")
    loss = core.MultipleNegativesSymmetricRankingLoss(scale=scale, similarity=_similarity(similarity_fct))
    return _gathered(loss, gather_across_devices)


def CosineSimilarityLoss(  # noqa: N802
    model: SentenceEncoder, loss_fct: nn.Module | None = None, cos_score_transformation: nn.Module | None = None
) -> nn.Module:
    _check_model(model, "CosineSimilarityLoss")
    if cos_score_transformation is not None and not isinstance(cos_score_transformation, nn.Identity):
        raise ValueError("CosineSimilarityLoss: cos_score_transformation is not supported by kosim.st")
    return core.CosineSimilarityLoss(loss_fct=loss_fct)


def CoSENTLoss(model: SentenceEncoder, scale: float = 20.0, similarity_fct: Callable | str = "cosine") -> nn.Module:  # noqa: N802
    _check_model(model, "CoSENTLoss")
    return core.CoSENTLoss(scale=scale, similarity=_similarity(similarity_fct))


def AnglELoss(model: SentenceEncoder, scale: float = 20.0) -> nn.Module:  # noqa: N802
    _check_model(model, "AnglELoss")
    return core.AnglELoss(scale=scale)


def MatryoshkaLoss(  # noqa: N802
    model: SentenceEncoder,
    loss: nn.Module,
    matryoshka_dims: Sequence[int],
    matryoshka_weights: Sequence[float] | None = None,
    n_dims_per_step: int = -1,
) -> nn.Module:
    """kosim's MatryoshkaLoss around `loss` (whose `trainer_options` still apply)."""
    _check_model(model, "MatryoshkaLoss")
    return core.MatryoshkaLoss(loss, matryoshka_dims, weights=matryoshka_weights, n_dims_per_step=n_dims_per_step)


def TripletLoss(  # noqa: N802
    model: SentenceEncoder, distance_metric: str = TripletDistanceMetric.EUCLIDEAN, triplet_margin: float = 5
) -> nn.Module:
    _check_model(model, "TripletLoss")
    return core.TripletLoss(distance_metric=distance_metric, triplet_margin=triplet_margin)


def ContrastiveLoss(  # noqa: N802
    model: SentenceEncoder,
    distance_metric: str = SiameseDistanceMetric.COSINE_DISTANCE,
    margin: float = 0.5,
    size_average: bool = True,
) -> nn.Module:
    _check_model(model, "ContrastiveLoss")
    return core.ContrastiveLoss(distance_metric=distance_metric, margin=margin, size_average=size_average)


def OnlineContrastiveLoss(  # noqa: N802
    model: SentenceEncoder, distance_metric: str = SiameseDistanceMetric.COSINE_DISTANCE, margin: float = 0.5
) -> nn.Module:
    _check_model(model, "OnlineContrastiveLoss")
    return core.OnlineContrastiveLoss(distance_metric=distance_metric, margin=margin)


def SoftmaxLoss(  # noqa: N802
    model: SentenceEncoder,
    sentence_embedding_dimension: int,
    num_labels: int,
    concatenation_sent_rep: bool = True,
    concatenation_sent_difference: bool = True,
    concatenation_sent_multiplication: bool = False,
    loss_fct: nn.Module | None = None,
) -> nn.Module:
    """The SBERT classifier head (built from torch's global RNG, as in sentence-transformers), on the model's device."""
    _check_model(model, "SoftmaxLoss")
    loss = core.SoftmaxLoss(
        sentence_embedding_dimension,
        num_labels,
        concatenation_sent_rep,
        concatenation_sent_difference,
        concatenation_sent_multiplication,
        loss_fct,
    )
    return loss.to(model.device)


def GISTEmbedLoss(  # noqa: N802
    model: SentenceEncoder,
    guide: SentenceEncoder,
    temperature: float = 0.01,
    margin_strategy: str = "absolute",
    margin: float = 0.0,
    contrast_anchors: bool = True,
    contrast_positives: bool = True,
    gather_across_devices: bool = False,
) -> nn.Module:
    """kosim's GIST loss; `guide` rides along (not as a submodule: it is frozen) for the Trainer's `guides`."""
    _check_model(model, "GISTEmbedLoss")
    _refuse("GISTEmbedLoss", gather_across_devices=(gather_across_devices, False))
    if not isinstance(guide, SentenceEncoder):
        raise TypeError(f"GISTEmbedLoss: guide must be a model (SentenceTransformer), got {type(guide).__name__}")
    loss = core.GISTEmbedLoss(temperature, margin_strategy, margin, contrast_anchors, contrast_positives)
    object.__setattr__(loss, "guide", guide)  # a plain attribute: its parameters stay out of the optimizer
    return loss


def MarginMSELoss(model: SentenceEncoder, similarity_fct: Callable | str = "dot") -> nn.Module:  # noqa: N802
    _check_model(model, "MarginMSELoss")
    return core.MarginMSELoss(similarity=_similarity(similarity_fct))


def MSELoss(model: SentenceEncoder) -> nn.Module:  # noqa: N802
    _check_model(model, "MSELoss")
    return core.MSELoss()


def BatchHardTripletLoss(  # noqa: N802
    model: SentenceEncoder, distance_metric: str = "euclidean", margin: float = 5
) -> nn.Module:
    _check_model(model, "BatchHardTripletLoss")
    return core.BatchHardTripletLoss(distance_metric=distance_metric, margin=margin)


def BatchSemiHardTripletLoss(  # noqa: N802
    model: SentenceEncoder, distance_metric: str = "euclidean", margin: float = 5
) -> nn.Module:
    _check_model(model, "BatchSemiHardTripletLoss")
    return core.BatchSemiHardTripletLoss(distance_metric=distance_metric, margin=margin)


def BatchAllTripletLoss(  # noqa: N802
    model: SentenceEncoder, distance_metric: str = "euclidean", margin: float = 5
) -> nn.Module:
    _check_model(model, "BatchAllTripletLoss")
    return core.BatchAllTripletLoss(distance_metric=distance_metric, margin=margin)


def BatchHardSoftMarginTripletLoss(model: SentenceEncoder, distance_metric: str = "euclidean") -> nn.Module:  # noqa: N802
    _check_model(model, "BatchHardSoftMarginTripletLoss")
    return core.BatchHardSoftMarginTripletLoss(distance_metric=distance_metric)


def _gathered(loss: nn.Module, gather_across_devices: bool) -> nn.Module:
    loss.st_trainer_options = {"gather_across_devices": True} if gather_across_devices else {}
    return loss


def trainer_options(loss: nn.Module) -> dict[str, Any]:
    """The TrainingArguments a loss (or the loss inside a wrapper such as MatryoshkaLoss) asks for: e.g.
    `{"mini_batch_size": 32}` from `CachedMultipleNegativesRankingLoss`, `{"gather_across_devices": True}`."""
    options: dict[str, Any] = {}
    while isinstance(loss, nn.Module):
        options = {**getattr(loss, "st_trainer_options", {}), **options}
        loss = getattr(loss, "loss", None)
    return options


def guide_model(loss: nn.Module) -> SentenceEncoder | None:
    """The guide model of a GIST loss (or of a wrapper around one, e.g. MatryoshkaLoss), else None."""
    while loss is not None:
        if "guide" in vars(loss):
            return vars(loss)["guide"]
        loss = getattr(loss, "loss", None)
    return None
