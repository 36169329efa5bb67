"""MNRL's directions / partition_mode / hardness (DirectionalRankingLoss) and the symmetric name, against
sentence-transformers 6.2 (values and gradients w.r.t. the embeddings)."""

from __future__ import annotations

import pytest
import torch
from sentence_transformers import util as st_util
from sentence_transformers.sentence_transformer import losses as st_losses

from kosim.losses.gte import DirectionalRankingLoss
from kosim.losses.mnrl import MultipleNegativesRankingLoss
from kosim.losses.mnrl_symmetric import MultipleNegativesSymmetricRankingLoss

B, D = 8, 16
ALL = ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")
DIRECTION_SETS = [
    (("query_to_doc",), "joint"),
    (("query_to_doc",), "per_direction"),
    (("query_to_doc", "doc_to_query"), "joint"),
    (("query_to_doc", "doc_to_query"), "per_direction"),
    (("query_to_doc", "query_to_query"), "joint"),
    (("query_to_doc", "doc_to_doc"), "joint"),
    (ALL, "joint"),
]


def columns(n: int, seed: int, dtype=torch.float32) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, D, generator=g, dtype=dtype) for _ in range(n)]


def value_and_grads(fn, cols):
    leaves = [c.clone().requires_grad_() for c in cols]
    loss = fn(leaves)
    loss.backward()
    return loss.detach(), [leaf.grad for leaf in leaves]


def assert_same(ours, theirs, tol=1e-6):
    torch.testing.assert_close(ours[0], theirs[0], rtol=tol, atol=tol)
    for a, b in zip(ours[1], theirs[1]):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def st_fn(**kwargs):
    loss = st_losses.MultipleNegativesRankingLoss(torch.nn.Identity(), **kwargs)
    return lambda e: loss.compute_loss_from_embeddings(e, None)


@pytest.mark.parametrize("n_columns", [2, 3, 4])
@pytest.mark.parametrize(("directions", "partition_mode"), DIRECTION_SETS)
def test_directions_match_sentence_transformers(n_columns, directions, partition_mode):
    cols = columns(n_columns, seed=n_columns)
    ours = value_and_grads(DirectionalRankingLoss(directions=directions, partition_mode=partition_mode), cols)
    theirs = value_and_grads(st_fn(directions=directions, partition_mode=partition_mode), cols)
    assert_same(ours, theirs)


@pytest.mark.parametrize("similarity", [("dot", st_util.dot_score), ("euclidean", st_util.euclidean_sim)])
def test_gte_other_similarities_and_scale(similarity):
    cols = columns(3, seed=5)
    ours = value_and_grads(DirectionalRankingLoss(scale=1.0, similarity=similarity[0], directions=ALL), cols)
    theirs = value_and_grads(st_fn(scale=1.0, similarity_fct=similarity[1], directions=ALL), cols)
    assert_same(ours, theirs)


@pytest.mark.parametrize("mode", ["in_batch_negatives", "hard_negatives", "all_negatives"])
@pytest.mark.parametrize("n_columns", [2, 3])
def test_hardness_matches_sentence_transformers(mode, n_columns):
    cols = columns(n_columns, seed=11)
    kwargs = {"hardness_mode": mode, "hardness_strength": 5.0, "directions": ALL}
    ours = value_and_grads(DirectionalRankingLoss(**kwargs), cols)
    assert_same(ours, value_and_grads(st_fn(**kwargs), cols))
    # the bonus changes the loss (except hard_negatives without negative columns)
    plain = DirectionalRankingLoss(directions=ALL)(cols)
    assert (ours[0] != plain) == (mode != "hard_negatives" or n_columns > 2)


def test_defaults_equal_kosim_mnrl():
    cols = columns(3, seed=2, dtype=torch.float64)
    assert_same(
        value_and_grads(DirectionalRankingLoss(), cols), value_and_grads(MultipleNegativesRankingLoss(), cols), 1e-12
    )


@pytest.mark.parametrize("n_columns", [2, 3])
def test_symmetric_name_matches_sentence_transformers(n_columns):
    cols = columns(n_columns, seed=20 + n_columns)
    st_loss = st_losses.MultipleNegativesSymmetricRankingLoss(torch.nn.Identity(), scale=30.0)
    ours = MultipleNegativesSymmetricRankingLoss(scale=30.0)
    assert isinstance(ours, MultipleNegativesRankingLoss) and ours.symmetric
    assert_same(
        value_and_grads(ours, cols), value_and_grads(lambda e: st_loss.compute_loss_from_embeddings(e, None), cols)
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"directions": ()}, "at least one"),
        ({"directions": ("doc_to_query",)}, "query_to_doc"),
        ({"directions": ("query_to_doc", "docs")}, "unknown directions"),
        ({"partition_mode": "mean"}, "partition_mode"),
        ({"directions": ALL, "partition_mode": "per_direction"}, "per_direction"),
        ({"hardness_mode": "hard"}, "hardness_mode"),
        ({"hardness_strength": -1.0}, "hardness_strength"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DirectionalRankingLoss(**kwargs)
