"""Dropout whose masks are cheap to draw on CPU.

`torch.nn.functional.dropout` draws one float (a `bernoulli_` sample) per element: on CPU that costs 4-7 ns per
element, more than the multiply it feeds, and in a training step with dropout on every hidden state and every
attention probability it was the largest cost after the matmuls. Here a mask costs 16 random bits per element:
one 64-bit draw of the CPU generator fills four 16-bit lanes, each compared with a threshold (about 1 ns per
element). The drop probability is rounded to a multiple of 2^-15 (0.1 becomes 0.100006) and the kept values are
scaled by the reciprocal of the exact keep probability, so the output's expectation is the input.

Masks come from torch's default generator of the device, so `torch.manual_seed`, `torch.get_rng_state` and
`torch.random.fork_rng` govern them as they do any dropout. Other devices (CUDA draws Philox numbers in parallel,
and fuses attention dropout into its kernels) use torch's own dropout.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LANES = 4  # 16-bit lanes per 64-bit draw
_LEVELS = 1 << 15  # drop probabilities are multiples of 1 / _LEVELS


def _keep_threshold(drop_levels: int) -> int:
    """The int16 threshold a 16-bit lane must reach to keep its element.

    The draw covers the full signed 64-bit range, so all four lanes are uniform on [-2^15, 2^15) and share one
    threshold: `2 * drop_levels` of the 2^16 values lie below it, a drop probability of `drop_levels / 2^15`. (One
    scalar threshold lets the comparison run vectorised; per-lane thresholds broadcast over a 4-wide last axis
    cost 1.5x the draw itself.)
    """
    return 2 * drop_levels - (1 << 15)


def keep_mask(shape: tuple[int, ...] | torch.Size, p: float) -> tuple[Tensor, float]:
    """A CPU keep mask of `shape` (bool, True = keep) and its exact keep probability `1 - round(p * 2^15) / 2^15`."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    drop_levels = round(p * _LEVELS)
    if drop_levels >= _LEVELS:
        raise ValueError(f"dropout probability {p} rounds to 1 at a resolution of 2^-15")
    n = math.prod(shape)
    words = torch.empty(-(-n // _LANES), dtype=torch.int64).random_(-(1 << 63), None)  # [words], all 64 bits
    keep = words.view(torch.int16) >= _keep_threshold(drop_levels)  # [words * 4]
    return keep[:n].view(shape), 1.0 - drop_levels / _LEVELS


def _as_factor(keep: Tensor, dtype: torch.dtype) -> Tensor:
    """The bool mask as 0 / 1 in `dtype`, read through its uint8 view.

    A bool -> float cast checks every byte (~0.8 ns per element); the uint8 view casts without it (~0.2 ns). The
    multiply by this factor then runs vectorised, where `torch.where(keep, x, 0)` runs a scalar loop on CPU
    (~3.7 ns per element, the largest cost of the step after the matmuls in a profile of the MiniLM MNRL step).
    """
    return keep.view(torch.uint8).to(dtype)


def _apply(x: Tensor, keep: Tensor, scale: float) -> Tensor:
    out = x * _as_factor(keep, x.dtype)
    return out if scale == 1.0 else out.mul_(scale)


class _MaskedScale(torch.autograd.Function):
    """`x * keep * scale`, forward and backward one cast of the mask and one or two multiplies each, saving only
    the bool mask.

    Written with autograd's own ops, the backward converts the bool mask to a float copy and multiplies twice
    more; `torch.where` on the mask is exact too but runs unvectorised on CPU (see `_as_factor`). A kept element
    is `x * 1`, a dropped one `x * 0` (as in `torch.nn.functional.dropout`: an inf or NaN stays NaN).
    """

    @staticmethod
    def forward(ctx, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return _apply(x, keep, scale)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (keep,) = ctx.saved_tensors
        return _apply(grad, keep, ctx.scale), None, None


def masked_scale(x: Tensor, keep: Tensor, scale: float = 1.0) -> Tensor:
    """`x` where `keep` (bool, broadcastable to `x`) is True, else 0, times `scale`; differentiable in `x`."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _MaskedScale.apply(x, keep, scale)
    return _apply(x, keep, scale)


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Inverted dropout of `x` (any shape): zero each element with probability ~`p`, scale the rest up."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or round(p * _LEVELS) >= _LEVELS:
        return F.dropout(x, p, training=True)
    keep, keep_prob = keep_mask(x.shape, p)
    return masked_scale(x, keep, 1.0 / keep_prob)


class Dropout(nn.Dropout):
    """`nn.Dropout` (same `p`, same switch by `train()` / `eval()`) with `dropout`'s cheap CPU masks."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)


__all__ = ["Dropout", "dropout", "keep_mask", "masked_scale"]
