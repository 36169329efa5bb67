"""The argument checks shared by every loss (kosim.losses.checks)."""

from __future__ import annotations

import pytest
import torch

from kosim.losses import CoSENTLoss, CosineSimilarityLoss, MultipleNegativesRankingLoss
from kosim.losses.checks import check_columns, check_labels, check_scale, upcast_half


@pytest.mark.parametrize("bad", [0, -1.0, True, "20", None, float("nan")])
def test_every_scaled_loss_refuses_the_same_bad_scales(bad) -> None:
    with pytest.raises(ValueError, match="scale must be a positive number"):
        check_scale(bad)
    for loss in (MultipleNegativesRankingLoss, CoSENTLoss):
        with pytest.raises(ValueError, match="scale must be a positive number"):
            loss(scale=bad)
    assert check_scale(20) == 20.0 and isinstance(check_scale(20), float)


def test_upcast_half_turns_only_half_types_into_float32() -> None:
    x = torch.randn(3)
    assert upcast_half(x) is x
    assert upcast_half(x.double()).dtype == torch.float64
    for half in (torch.float16, torch.bfloat16):
        up = upcast_half(x.to(half))
        assert up.dtype == torch.float32
        torch.testing.assert_close(up, x.to(half).float(), rtol=0, atol=0)


def test_the_checks_name_the_loss_and_the_column() -> None:
    good = torch.randn(4, 8)
    with pytest.raises(ValueError, match="MyLoss: embedding column 1 has batch size 3"):
        check_columns([good, torch.randn(3, 8)], "MyLoss", min_columns=2)
    with pytest.raises(ValueError, match="MyLoss: label at index 2 is not finite"):
        check_labels(torch.tensor([0.0, 1.0, float("inf"), 0.5]), 4, "MyLoss")
    # The losses themselves report through the same checks.
    with pytest.raises(ValueError, match="CosineSimilarityLoss needs exactly 2 embedding columns, got 3"):
        CosineSimilarityLoss()([good, good, good], torch.zeros(4))
    assert check_labels([1, 0, 1, 0], 4, "MyLoss").dtype == torch.float32
