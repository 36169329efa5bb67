"""TripletLoss, ContrastiveLoss, OnlineContrastiveLoss, AnglELoss and the batch triplet losses against
sentence-transformers 6.2: values and gradients w.r.t. the embeddings within 1e-6."""

from __future__ import annotations

import warnings

import pytest
import torch
from sentence_transformers.sentence_transformer import losses as st_losses
from sentence_transformers.sentence_transformer.losses.batch_hard_triplet import (
    BatchHardTripletLossDistanceFunction as STBatchDistance,
)
from sentence_transformers.sentence_transformer.losses.contrastive import SiameseDistanceMetric
from sentence_transformers.sentence_transformer.losses.triplet import TripletDistanceMetric
from sentence_transformers.util import pairwise_angle_sim as st_pairwise_angle_sim

from kosim.losses.angle import AnglELoss, pairwise_angle_sim
from kosim.losses.batch_hard import (
    BatchAllTripletLoss,
    BatchHardSoftMarginTripletLoss,
    BatchHardTripletLoss,
    BatchSemiHardTripletLoss,
)
from kosim.losses.contrastive import ContrastiveLoss, OnlineContrastiveLoss
from kosim.losses.cosent import CoSENTLoss
from kosim.losses.triplet import TripletLoss

B, D = 12, 16
IDENTITY = torch.nn.Identity()


def columns(n: int, seed: int, dim: int = D, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, dim, generator=g, dtype=dtype) for _ in range(n)]


def value_and_grads(fn, cols, labels=None):
    leaves = [c.clone().requires_grad_() for c in cols]
    loss = fn(leaves, labels)
    loss.backward()
    return loss.detach(), [leaf.grad for leaf in leaves]


def assert_same(ours_fn, st_loss, cols, labels=None, tol=1e-6):
    ours = value_and_grads(ours_fn, cols, labels)
    theirs = value_and_grads(st_loss.compute_loss_from_embeddings, cols, labels)
    torch.testing.assert_close(ours[0], theirs[0], rtol=tol, atol=tol)
    for a, b in zip(ours[1], theirs[1]):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    return ours[0]


@pytest.mark.parametrize(
    ("name", "metric", "margin"),
    [
        ("euclidean", TripletDistanceMetric.EUCLIDEAN, 5.0),
        ("cosine", TripletDistanceMetric.COSINE, 0.5),
        ("manhattan", TripletDistanceMetric.MANHATTAN, 20.0),
    ],
)
def test_triplet_loss(name, metric, margin):
    cols = columns(3, seed=1)
    value = assert_same(TripletLoss(name, margin), st_losses.TripletLoss(IDENTITY, metric, margin), cols)
    assert value > 0
    assert TripletLoss().config() == st_losses.TripletLoss(IDENTITY).get_config_dict()


def binary_labels(seed: int) -> torch.Tensor:
    return torch.randint(0, 2, (B,), generator=torch.Generator().manual_seed(seed)).float()


METRICS = [
    ("cosine", SiameseDistanceMetric.COSINE_DISTANCE, 0.5),
    ("euclidean", SiameseDistanceMetric.EUCLIDEAN, 6.0),
    ("manhattan", SiameseDistanceMetric.MANHATTAN, 20.0),
]


@pytest.mark.parametrize(("name", "metric", "margin"), METRICS)
@pytest.mark.parametrize("size_average", [True, False])
def test_contrastive_loss(name, metric, margin, size_average):
    cols, labels = columns(2, seed=2), binary_labels(2)
    st_loss = st_losses.ContrastiveLoss(IDENTITY, metric, margin, size_average)
    assert_same(ContrastiveLoss(name, margin, size_average), st_loss, cols, labels)
    assert ContrastiveLoss().config() == st_losses.ContrastiveLoss(IDENTITY).get_config_dict()


@pytest.mark.parametrize(("name", "metric", "margin"), METRICS)
@pytest.mark.parametrize("seed", [3, 4, 5])
def test_online_contrastive_loss(name, metric, margin, seed):
    cols, labels = columns(2, seed=seed), binary_labels(seed)
    value = assert_same(
        OnlineContrastiveLoss(name, margin), st_losses.OnlineContrastiveLoss(IDENTITY, metric, margin), cols, labels
    )
    assert value > 0


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_online_contrastive_one_class_only(fill):
    cols, labels = columns(2, seed=6), torch.full((B,), fill)
    st_loss = st_losses.OnlineContrastiveLoss(IDENTITY)
    assert_same(OnlineContrastiveLoss(), st_loss, cols, labels)


def test_contrastive_warns_once_on_non_binary_labels():
    loss = ContrastiveLoss()
    labels = torch.linspace(0, 1, B)
    with pytest.warns(UserWarning, match="binary labels"):
        loss(columns(2, seed=7), labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss(columns(2, seed=7), labels)


@pytest.mark.parametrize("dim", [16, 15])
def test_angle_similarity(dim):
    a, b = columns(2, seed=8, dim=dim)
    torch.testing.assert_close(pairwise_angle_sim(a, b), st_pairwise_angle_sim(a, b), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("n_columns", "with_labels"), [(2, True), (3, True), (3, False), (4, True), (4, False)])
def test_angle_loss(n_columns, with_labels):
    # float64: kosim's CoSENT sums all pairs, sentence-transformers' sorts them (float32 rounding differs by ~3e-6
    # on the 36 pairs of four columns)
    cols = columns(n_columns, seed=9, dtype=torch.float64)
    labels = torch.rand(B, generator=torch.Generator().manual_seed(9), dtype=torch.float64) if with_labels else None
    assert_same(AnglELoss(scale=20.0), st_losses.AnglELoss(IDENTITY, scale=20.0), cols, labels, tol=1e-10)
    # = CoSENT with the angle similarity, in sentence-transformers too
    if n_columns == 2:
        st_cosent = st_losses.CoSENTLoss(IDENTITY, similarity_fct=st_pairwise_angle_sim)
        assert_same(AnglELoss(), st_cosent, cols, labels, tol=1e-10)
        cosent = CoSENTLoss()
        cosent.similarity_fct = pairwise_angle_sim
        torch.testing.assert_close(AnglELoss()(cols, labels), cosent(cols, labels))


def class_labels(seed: int, n_classes: int = 3) -> torch.Tensor:
    return torch.randint(0, n_classes, (B,), generator=torch.Generator().manual_seed(seed)).float()


ST_DISTANCES = {"euclidean": STBatchDistance.euclidean_distance, "cosine": STBatchDistance.cosine_distance}
BATCH_LOSSES = [
    (BatchHardTripletLoss, st_losses.BatchHardTripletLoss, {"margin": 1.0}),
    (BatchSemiHardTripletLoss, st_losses.BatchSemiHardTripletLoss, {"margin": 1.0}),
    (BatchAllTripletLoss, st_losses.BatchAllTripletLoss, {"margin": 1.0}),
    (BatchHardSoftMarginTripletLoss, st_losses.BatchHardSoftMarginTripletLoss, {}),
]


@pytest.mark.parametrize(("ours", "theirs", "kwargs"), BATCH_LOSSES)
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize(("seed", "n_classes"), [(10, 3), (11, 2), (12, 6)])
def test_batch_triplet_losses(ours, theirs, kwargs, distance, seed, n_classes):
    cols, labels = columns(1, seed=seed), class_labels(seed, n_classes)
    if distance == "cosine" and "margin" in kwargs:
        kwargs = {"margin": 0.3}
    st_loss = theirs(IDENTITY, distance_metric=ST_DISTANCES[distance], **kwargs)
    value = assert_same(ours(distance_metric=distance, **kwargs), st_loss, cols, labels)
    assert value > 0
    assert ours().config() == theirs(IDENTITY).get_config_dict()


@pytest.mark.parametrize(("ours", "theirs", "kwargs"), BATCH_LOSSES)
def test_batch_triplet_losses_default_margin_and_duplicate_rows(ours, theirs, kwargs):
    (rows,) = columns(1, seed=13)
    rows[3] = rows[0]  # a zero distance off the diagonal
    labels = class_labels(13)
    labels[3] = labels[0]
    assert_same(ours(), theirs(IDENTITY), [rows * 0.3], labels)


def test_batch_losses_need_labels_and_one_column():
    with pytest.raises(ValueError, match="needs labels"):
        BatchHardTripletLoss()(columns(1, seed=0), None)
    with pytest.raises(ValueError, match="exactly 1"):
        BatchAllTripletLoss()(columns(2, seed=0), class_labels(0))
