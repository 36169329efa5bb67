"""The explicit loss registry and build_loss."""

from __future__ import annotations

import pytest

from kosim.losses import (
    LOSSES,
    CoSENTLoss,
    CosineSimilarityLoss,
    MatryoshkaLoss,
    MultipleNegativesRankingLoss,
    build_loss,
)


def test_registry_names_and_aliases() -> None:
    expected = {
        "MultipleNegativesRankingLoss": MultipleNegativesRankingLoss,
        "mnrl": MultipleNegativesRankingLoss,
        "CosineSimilarityLoss": CosineSimilarityLoss,
        "cosine": CosineSimilarityLoss,
        "CoSENTLoss": CoSENTLoss,
        "cosent": CoSENTLoss,
        "MatryoshkaLoss": MatryoshkaLoss,
        "matryoshka": MatryoshkaLoss,
    }
    for name, cls in expected.items():
        assert LOSSES[name] is cls


def test_build_loss_passes_kwargs_and_is_case_insensitive() -> None:
    loss = build_loss("mnrl", scale=30.0, similarity="dot")
    assert isinstance(loss, MultipleNegativesRankingLoss) and loss.config()["scale"] == 30.0
    assert isinstance(build_loss("COSENT"), CoSENTLoss)
    assert isinstance(build_loss("multiplenegativesrankingloss"), MultipleNegativesRankingLoss)


def test_build_matryoshka_with_named_inner_loss() -> None:
    loss = build_loss("matryoshka", loss={"name": "mnrl", "scale": 30.0}, dims=[64, 32])
    assert isinstance(loss.loss, MultipleNegativesRankingLoss) and loss.loss.scale == 30.0
    assert isinstance(build_loss("matryoshka", loss="cosent", dims=[8]).loss, CoSENTLoss)
    with pytest.raises(ValueError, match="'name'"):
        build_loss("matryoshka", loss={"scale": 3.0}, dims=[8])


def test_unknown_name_suggests_a_close_match() -> None:
    with pytest.raises(ValueError, match="Did you mean 'CoSENTLoss'"):
        build_loss("CoSentLos")
    with pytest.raises(ValueError, match="Did you mean 'mnrl'"):
        build_loss("mnlr")
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss("zzzzzz")


def test_bad_kwargs_name_the_loss() -> None:
    with pytest.raises(TypeError, match="CoSENTLoss"):
        build_loss("cosent", temperature=0.05)
