"""CosineSimilarityLoss and CoSENTLoss against sentence-transformers 6.2 and against their textbook formulas."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from sentence_transformers import util as st_util
from sentence_transformers.sentence_transformer import losses as st_losses

from kosim.losses import CoSENTLoss, CosineSimilarityLoss

B, D = 8, 16


def random_pair(seed: int, dtype: torch.dtype = torch.float32) -> tuple[list[torch.Tensor], torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    columns = [torch.randn(B, D, generator=generator, dtype=dtype) for _ in range(2)]
    labels = torch.rand(B, generator=generator, dtype=dtype)
    return columns, labels


def value_and_grads(loss_fn, columns, labels) -> tuple[torch.Tensor, list[torch.Tensor]]:
    leaves = [c.clone().requires_grad_() for c in columns]
    loss = loss_fn(leaves, labels)
    loss.backward()
    return loss.detach(), [leaf.grad for leaf in leaves]


def assert_matches(ours, theirs, tol: float) -> None:
    torch.testing.assert_close(ours[0], theirs[0], rtol=tol, atol=tol)
    for ours_grad, st_grad in zip(ours[1], theirs[1]):
        torch.testing.assert_close(ours_grad, st_grad, rtol=tol, atol=tol)


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cosine_similarity_loss_matches_sentence_transformers(dtype: torch.dtype, tol: float, seed: int) -> None:
    columns, labels = random_pair(seed, dtype)
    # ST casts labels to float32 (``labels.float()``) even for float64 embeddings; use float32-exact labels.
    labels = labels.float().to(dtype)
    st_loss = st_losses.CosineSimilarityLoss(torch.nn.Identity())
    ours = value_and_grads(CosineSimilarityLoss(), columns, labels)
    assert_matches(ours, value_and_grads(st_loss.compute_loss_from_embeddings, columns, labels), tol)


def test_cosine_similarity_loss_inner_loss_is_configurable() -> None:
    columns, labels = random_pair(3)
    st_loss = st_losses.CosineSimilarityLoss(torch.nn.Identity(), loss_fct=torch.nn.L1Loss())
    ours = value_and_grads(CosineSimilarityLoss(loss_fct=torch.nn.L1Loss()), columns, labels)
    assert_matches(ours, value_and_grads(st_loss.compute_loss_from_embeddings, columns, labels), 1e-6)
    assert CosineSimilarityLoss(torch.nn.L1Loss()).config() == {"loss_fct": "torch.nn.modules.loss.L1Loss"}


def test_cosine_similarity_loss_hand_formula() -> None:
    (u, v), labels = random_pair(4, torch.float64)
    cosines = torch.tensor([float(u[i] @ v[i] / (u[i].norm() * v[i].norm())) for i in range(B)], dtype=torch.float64)
    expected = ((cosines - labels) ** 2).mean()
    torch.testing.assert_close(CosineSimilarityLoss()([u, v], labels), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cosent_matches_sentence_transformers(dtype: torch.dtype, tol: float, seed: int) -> None:
    columns, labels = random_pair(seed, dtype)
    st_loss = st_losses.CoSENTLoss(torch.nn.Identity())
    ours = value_and_grads(CoSENTLoss(), columns, labels)
    assert_matches(ours, value_and_grads(st_loss.compute_loss_from_embeddings, columns, labels), tol)


@pytest.mark.parametrize("similarity", ["dot", "euclidean", "manhattan"])
def test_cosent_other_similarities_match_sentence_transformers(similarity: str) -> None:
    columns, labels = random_pair(5)
    columns = [c / 4 for c in columns]  # keep the scaled scores in a range where float32 rounding stays small
    labels = torch.randint(0, 3, (B,), generator=torch.Generator().manual_seed(5)).float()  # ties on purpose
    st_fn = {
        "dot": st_util.pairwise_dot_score,
        "euclidean": st_util.pairwise_euclidean_sim,
        "manhattan": st_util.pairwise_manhattan_sim,
    }[similarity]
    st_loss = st_losses.CoSENTLoss(torch.nn.Identity(), scale=1.0, similarity_fct=st_fn)
    ours = value_and_grads(CoSENTLoss(scale=1.0, similarity=similarity), columns, labels)
    assert_matches(ours, value_and_grads(st_loss.compute_loss_from_embeddings, columns, labels), 1e-6)
    assert CoSENTLoss(similarity=similarity).config()["similarity_fct"] == st_fn.__name__


def test_cosent_hand_formula_with_ties() -> None:
    (u, v), _ = random_pair(6, torch.float64)
    labels = torch.tensor([0.0, 1.0, 1.0, 0.5, 0.0, 1.0, 0.25, 0.5], dtype=torch.float64)
    cos = [float(u[i] @ v[i] / (u[i].norm() * v[i].norm())) for i in range(B)]
    total = 1.0
    for i, j in itertools.product(range(B), repeat=2):
        if labels[i] < labels[j]:
            total += math.exp(20.0 * (cos[i] - cos[j]))
    loss = CoSENTLoss()([u, v], labels)
    assert loss.item() == pytest.approx(math.log(total), rel=1e-12)


def test_cosent_all_equal_labels_gives_zero_and_finite_gradients() -> None:
    columns, _ = random_pair(7)
    loss, grads = value_and_grads(CoSENTLoss(), columns, torch.ones(B))
    assert loss.item() == 0.0
    assert all(torch.equal(g, torch.zeros_like(g)) for g in grads)
    # The top-ranked rows have nobody above them (an all -inf logsumexp): still no NaN gradients.
    _, grads = value_and_grads(CoSENTLoss(), columns, torch.tensor([0.0, 1, 1, 0.5, 0, 1, 0.25, 1]))
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("loss_cls", [CosineSimilarityLoss, CoSENTLoss])
def test_pair_loss_validation(loss_cls) -> None:
    columns, labels = random_pair(8)
    loss_fn = loss_cls()
    with pytest.raises(ValueError, match="exactly 2"):
        loss_fn(columns[:1], labels)
    with pytest.raises(ValueError, match="exactly 2"):
        loss_fn(columns + columns[:1], labels)
    with pytest.raises(ValueError, match="needs labels"):
        loss_fn(columns, None)
    with pytest.raises(ValueError, match="needs 8 labels"):
        loss_fn(columns, labels[:-1])
    with pytest.raises(ValueError, match="column 1 has batch size 7"):
        loss_fn([columns[0], columns[1][:-1]], labels)
    bad = labels.clone()
    bad[5] = float("nan")
    with pytest.raises(ValueError, match="index 5"):
        loss_fn(columns, bad)
    bad[5] = 0.5
    bad[2] = float("inf")
    with pytest.raises(ValueError, match="index 2"):
        loss_fn(columns, bad)
    # [batch, 1] labels are accepted as [batch].
    torch.testing.assert_close(loss_fn(columns, labels.unsqueeze(1)), loss_fn(columns, labels))


def test_configs_match_sentence_transformers_keys() -> None:
    identity = torch.nn.Identity()
    assert CoSENTLoss().config() == st_losses.CoSENTLoss(identity).get_config_dict()
    assert CoSENTLoss().config() == {"scale": 20.0, "similarity_fct": "pairwise_cos_sim"}
    assert CosineSimilarityLoss().config() == {"loss_fct": "torch.nn.modules.loss.MSELoss"}
    st_config = st_losses.CosineSimilarityLoss(identity).get_config_dict()
    assert st_config["loss_fct"] == CosineSimilarityLoss().config()["loss_fct"]
    assert CoSENTLoss.citation.startswith("@") and CosineSimilarityLoss.citation.startswith("@")
