"""MatryoshkaLoss: slicing-only composition, against a hand formula and sentence-transformers 6.2."""

from __future__ import annotations

import random

import pytest
import torch
from sentence_transformers import util as st_util
from sentence_transformers.sentence_transformer import losses as st_losses

from kosim.losses import CoSENTLoss, MatryoshkaLoss, MultipleNegativesRankingLoss

B, D = 8, 32
DIMS = [8, 32, 16]
WEIGHTS = [2.0, 1.0, 0.5]


class ColumnModel(torch.nn.Module):
    """Stand-in for a SentenceTransformer: its "features" already hold the embeddings."""

    def forward(self, features: dict) -> dict:
        return {"sentence_embedding": features["embedding"]}

    def get_embedding_dimension(self) -> int:
        return D


def random_columns(n: int, seed: int, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(B, D, generator=generator, dtype=dtype) for _ in range(n)]


def value_and_grads(loss_fn, columns, *args):
    leaves = [c.clone().requires_grad_() for c in columns]
    loss = loss_fn(leaves, *args)
    loss.backward()
    return loss.detach(), [leaf.grad for leaf in leaves]


def assert_matches(ours, theirs, tol: float) -> None:
    torch.testing.assert_close(ours[0], theirs[0], rtol=tol, atol=tol)
    for a, b in zip(ours[1], theirs[1]):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("normalize", [True, False])
def test_hand_formula(normalize: bool) -> None:
    columns = random_columns(3, seed=0, dtype=torch.float64)
    inner = MultipleNegativesRankingLoss(scale=1.0, similarity="dot")
    ours = value_and_grads(MatryoshkaLoss(inner, DIMS, WEIGHTS, normalize=normalize), columns)

    def by_hand(cols):
        total = 0.0
        for dim, weight in zip(DIMS, WEIGHTS):
            prefixes = [c[:, :dim] for c in cols]
            if normalize:
                prefixes = [p / p.norm(dim=1, keepdim=True) for p in prefixes]
            total = total + weight * inner(prefixes)
        return total

    assert_matches(ours, value_and_grads(by_hand, columns), 1e-12)


@pytest.mark.parametrize(
    ("ours_inner", "st_inner"),
    [
        (lambda: MultipleNegativesRankingLoss(), lambda m: st_losses.MultipleNegativesRankingLoss(m)),
        (
            lambda: MultipleNegativesRankingLoss(scale=1.0, similarity="dot"),
            lambda m: st_losses.MultipleNegativesRankingLoss(m, scale=1.0, similarity_fct=st_util.dot_score),
        ),
    ],
    ids=["mnrl-cosine", "mnrl-dot"],
)
def test_matches_sentence_transformers_mnrl(ours_inner, st_inner) -> None:
    columns = random_columns(3, seed=1)
    model = ColumnModel()
    st_loss = st_losses.MatryoshkaLoss(model, st_inner(model), DIMS, WEIGHTS)
    ours = value_and_grads(MatryoshkaLoss(ours_inner(), DIMS, WEIGHTS), columns)
    theirs = value_and_grads(lambda cols: st_loss([{"embedding": c} for c in cols], None), columns)
    assert_matches(ours, theirs, 1e-6)


def test_matches_sentence_transformers_cosent() -> None:
    columns = random_columns(2, seed=2)
    labels = torch.rand(B, generator=torch.Generator().manual_seed(2))
    model = ColumnModel()
    st_loss = st_losses.MatryoshkaLoss(model, st_losses.CoSENTLoss(model), DIMS)
    ours = value_and_grads(MatryoshkaLoss(CoSENTLoss(), DIMS), columns, labels)
    theirs = value_and_grads(lambda cols, y: st_loss([{"embedding": c} for c in cols], y), columns, labels)
    assert_matches(ours, theirs, 1e-6)


def test_reuses_the_given_embeddings_without_extra_forward() -> None:
    """Gradients reach one shared leaf per column, so an upstream (e.g. cached) forward runs exactly once."""
    calls = []
    encoder = torch.nn.Linear(D, D)
    encoder.register_forward_hook(lambda *args: calls.append(1))
    inputs = random_columns(2, seed=3)
    embeddings = [encoder(x) for x in inputs]
    loss = MatryoshkaLoss(MultipleNegativesRankingLoss(), DIMS)(embeddings)
    loss.backward()
    assert len(calls) == 2
    assert encoder.weight.grad is not None


def test_n_dims_per_step_samples_a_subset() -> None:
    columns = random_columns(2, seed=4, dtype=torch.float64)
    inner = MultipleNegativesRankingLoss()
    loss_fn = MatryoshkaLoss(inner, DIMS, WEIGHTS, n_dims_per_step=1)
    random.seed(0)
    value = loss_fn(columns)
    candidates = [
        w * inner([torch.nn.functional.normalize(c[:, :d], dim=-1) for c in columns]) for d, w in zip(DIMS, WEIGHTS)
    ]
    assert any(torch.isclose(value, c, rtol=1e-12, atol=1e-12) for c in candidates)


def test_embedding_shaped_labels_are_truncated() -> None:
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, embeddings, labels=None, text_ids=None):
            seen.append((embeddings[0].shape[-1], labels.shape[-1]))
            return embeddings[0].sum() * 0

    MatryoshkaLoss(Recorder(), DIMS)(random_columns(1, seed=5), torch.randn(B, D))
    assert seen == [(32, 32), (16, 16), (8, 8)]


def test_validation() -> None:
    inner = MultipleNegativesRankingLoss()
    for bad in ([], [0, 8], [-4], [8.0], [True], "64"):
        with pytest.raises(ValueError):
            MatryoshkaLoss(inner, bad)
    with pytest.raises(ValueError, match="distinct"):
        MatryoshkaLoss(inner, [8, 8])
    with pytest.raises(ValueError, match="weights"):
        MatryoshkaLoss(inner, [8, 16], [1.0])
    with pytest.raises(ValueError, match="finite"):
        MatryoshkaLoss(inner, [8, 16], [1.0, float("nan")])
    with pytest.raises(TypeError):
        MatryoshkaLoss("mnrl", [8])
    with pytest.raises(ValueError, match="Matryoshka dim 64 is larger than the embedding dim 32"):
        MatryoshkaLoss(inner, [64, 16])(random_columns(2, seed=6))


def test_config_matches_sentence_transformers() -> None:
    model = ColumnModel()
    st_config = st_losses.MatryoshkaLoss(
        model, st_losses.MultipleNegativesRankingLoss(model), DIMS, WEIGHTS
    ).get_config_dict()
    ours = MatryoshkaLoss(MultipleNegativesRankingLoss(), DIMS, WEIGHTS).config()
    assert ours == {key: list(v) if isinstance(v, tuple) else v for key, v in st_config.items()}
    assert ours["matryoshka_dims"] == [32, 16, 8]
    assert MatryoshkaLoss.citation.startswith("@")
