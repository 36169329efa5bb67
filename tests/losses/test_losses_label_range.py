"""label_range: the values a loss's regression target can take, read by the Trainer to warn about unreachable labels."""

from __future__ import annotations

import torch

from kosim.losses import CoSENTLoss, CosineSimilarityLoss, MatryoshkaLoss, MultipleNegativesRankingLoss, build_loss


def test_cosine_similarity_loss_targets_a_cosine() -> None:
    loss = CosineSimilarityLoss()
    assert loss.label_range == (-1.0, 1.0)
    # Independent check that the range is the one the prediction can reach: identical and opposite embeddings give
    # cosines 1 and -1 (zero loss at the ends of the range), and no pair of random embeddings leaves it.
    torch.manual_seed(0)
    u = torch.randn(64, 16)
    low, high = loss.label_range
    assert loss([u, u], torch.full((64,), high)).item() < 1e-10
    assert loss([u, -u], torch.full((64,), low)).item() < 1e-10
    cosine = torch.nn.functional.cosine_similarity(u, torch.randn(64, 16))
    assert bool(((cosine >= low) & (cosine <= high)).all())


def test_matryoshka_forwards_its_inner_loss_range() -> None:
    assert MatryoshkaLoss(CosineSimilarityLoss(), dims=[8, 4]).label_range == (-1.0, 1.0)
    assert build_loss("matryoshka", loss="cosine", dims=[8]).label_range == (-1.0, 1.0)
    assert MatryoshkaLoss(CoSENTLoss(), dims=[8]).label_range is None


def test_losses_without_a_bounded_target_have_no_range() -> None:
    # CoSENT only uses the order of its labels; MNRL takes no labels at all.
    for loss in (CoSENTLoss(), MultipleNegativesRankingLoss()):
        assert getattr(loss, "label_range", None) is None
