"""kosim's dropout (16-bit masks from 64-bit draws) against its definition and torch's conventions."""

from __future__ import annotations

import math

import pytest
import torch

from kosim.nn.dropout import Dropout, dropout, keep_mask


def _binomial_bound(p: float, n: int, sigmas: float = 6.0) -> float:
    return sigmas * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5, 0.9])
def test_keep_rate_is_p_in_every_lane(p):
    torch.manual_seed(0)
    n = 400_003  # not a multiple of the 4 lanes of a draw
    keep, keep_prob = keep_mask((n,), p)
    assert keep.dtype == torch.bool and keep.shape == (n,)
    assert abs(keep_prob - (1 - p)) <= 2**-16  # p is rounded to a multiple of 2^-15
    # every lane of a 64-bit draw (the sign-free top lane included) keeps at the same rate
    for lane in range(4):
        rate = keep[lane::4].float().mean().item()
        assert abs(rate - keep_prob) < _binomial_bound(keep_prob, n // 4), (lane, rate)
    # neighbours are independent: both kept at rate keep_prob^2
    both = (keep[:-1] & keep[1:]).float().mean().item()
    assert abs(both - keep_prob**2) < _binomial_bound(keep_prob**2, n)


def test_output_and_gradient_follow_the_mask():
    x = torch.randn(7, 33, 5, requires_grad=True)
    grad = torch.randn(7, 33, 5)
    torch.manual_seed(3)
    y = dropout(x, 0.2)
    y.backward(grad)
    torch.manual_seed(3)
    keep, keep_prob = keep_mask(x.shape, 0.2)
    expected = torch.where(keep, x.detach() / keep_prob, torch.zeros(()))
    torch.testing.assert_close(y.detach(), expected)
    torch.testing.assert_close(x.grad, torch.where(keep, grad / keep_prob, torch.zeros(())))
    assert 0 < (y == 0).sum() < y.numel()


def test_expectation_is_the_input():
    torch.manual_seed(0)
    y = dropout(torch.full((1_000_000,), 3.0), 0.3)
    assert abs(y.mean().item() - 3.0) < 6 * 3.0 * math.sqrt(0.3 / 0.7 / 1_000_000)


def test_same_seed_same_mask_and_rng_state_governs_it():
    x = torch.ones(1000)
    torch.manual_seed(11)
    a = dropout(x, 0.5)
    state = torch.get_rng_state()
    b = dropout(x, 0.5)
    torch.set_rng_state(state)
    c = dropout(x, 0.5)
    torch.manual_seed(11)
    assert torch.equal(dropout(x, 0.5), a)
    assert torch.equal(b, c) and not torch.equal(a, b)


def test_module_is_an_nn_dropout_switched_by_train_and_eval():
    m = Dropout(0.4)
    assert isinstance(m, torch.nn.Dropout) and m.p == 0.4
    x = torch.randn(100, 10)
    assert not torch.equal(m(x), x)
    m.eval()
    assert m(x) is x
    m.train()
    m.p = 0.0
    assert m(x) is x


@pytest.mark.parametrize("p", [-0.1, 1.0, 0.99999])
def test_bad_probability_is_rejected(p):
    with pytest.raises(ValueError, match="dropout probability"):
        keep_mask((10,), p)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("broadcast", [False, True])
def test_masked_scale_is_where_then_scale_exactly(dtype, broadcast):
    """The vectorised mask multiply gives the bits of `where(keep, x, 0) * scale`, forward and backward."""
    from kosim.nn.dropout import masked_scale

    torch.manual_seed(5)
    x = torch.randn(6, 17, 9).to(dtype).requires_grad_()
    keep, _ = keep_mask((6, 1, 9) if broadcast else (6, 17, 9), 0.3)
    grad = torch.randn(6, 17, 9).to(dtype)
    y = masked_scale(x, keep, 1.25)
    y.backward(grad)
    zero = torch.zeros((), dtype=dtype)
    assert torch.equal(y.detach(), torch.where(keep, x.detach(), zero) * 1.25)
    assert torch.equal(x.grad, torch.where(keep, grad, zero) * 1.25)
    with torch.no_grad():
        assert torch.equal(masked_scale(x, keep), torch.where(keep, x, zero))
    assert 0 < int((y == 0).sum()) < y.numel()
