"""The argument checks every loss shares: embedding columns, labels, the scale, and the half-precision upcast.

Every kosim loss is a function of embeddings: it receives one ``[batch, dim]`` tensor per data column and never
touches a model. These checks run at the top of each ``forward`` so that a mis-built collator or a bad label fails
with the column or index named, instead of as a shape error (or a silent NaN) deep inside the loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["check_columns", "check_labels", "check_scale", "upcast_half"]


def check_columns(
    embeddings: Sequence[Tensor],
    loss_name: str,
    min_columns: int,
    max_columns: int | None = None,
) -> list[Tensor]:
    """Validate the per-column embeddings handed to a loss and return them as a list.

    Each column must be a 2-D ``[batch, dim]`` floating tensor; all columns must share the batch size and the
    embedding width. Errors name the offending column so that a mis-built collator is easy to find.
    """
    if isinstance(embeddings, Tensor) or not isinstance(embeddings, Sequence):
        raise TypeError(
            f"{loss_name} expects a list of [batch, dim] tensors (one per data column), got {type(embeddings).__name__}"
        )
    columns = list(embeddings)
    n = len(columns)
    if max_columns is not None and min_columns == max_columns and n != min_columns:
        raise ValueError(f"{loss_name} needs exactly {min_columns} embedding columns, got {n}")
    if n < min_columns:
        raise ValueError(f"{loss_name} needs at least {min_columns} embedding columns, got {n}")
    if max_columns is not None and n > max_columns:
        raise ValueError(f"{loss_name} accepts at most {max_columns} embedding columns, got {n}")
    for i, column in enumerate(columns):
        if not isinstance(column, Tensor):
            raise TypeError(f"{loss_name}: embedding column {i} is a {type(column).__name__}, not a tensor")
        if column.dim() != 2:
            raise ValueError(
                f"{loss_name}: embedding column {i} must have shape [batch, dim], got {tuple(column.shape)}"
            )
        if not column.is_floating_point():
            raise TypeError(f"{loss_name}: embedding column {i} must be floating point, got {column.dtype}")
    batch, dim = columns[0].shape
    for i, column in enumerate(columns[1:], start=1):
        if column.shape[0] != batch:
            raise ValueError(
                f"{loss_name}: embedding column {i} has batch size {column.shape[0]}, but column 0 has {batch}"
            )
        if column.shape[1] != dim:
            raise ValueError(
                f"{loss_name}: embedding column {i} has embedding dim {column.shape[1]}, but column 0 has {dim}"
            )
    if batch == 0:
        raise ValueError(f"{loss_name}: got an empty batch (batch size 0)")
    return columns


def check_labels(labels: Tensor | None, batch_size: int, loss_name: str) -> Tensor:
    """Validate a per-example label tensor and return it flattened to ``[batch]``.

    Accepts ``[batch]`` or ``[batch, 1]``. Non-finite labels are rejected with the index of the first bad one,
    because a single NaN label silently turns the whole loss (and every gradient) into NaN.
    """
    if labels is None:
        raise ValueError(f"{loss_name} needs labels (one float per example), got None")
    if not isinstance(labels, Tensor):
        labels = torch.as_tensor(labels)
    if labels.numel() != batch_size:
        raise ValueError(
            f"{loss_name} needs {batch_size} labels (one per example), got {labels.numel()} with shape "
            f"{tuple(labels.shape)}"
        )
    labels = labels.reshape(-1)
    if not labels.is_floating_point():
        labels = labels.float()
    finite = torch.isfinite(labels)
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0, 0])
        raise ValueError(f"{loss_name}: label at index {bad} is not finite ({labels[bad].item()})")
    return labels


def check_scale(scale: float) -> float:
    """The inverse temperature of a similarity-based loss as a float; a bool, non-number or ``scale <= 0`` raises."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    return float(scale)


def upcast_half(scores: Tensor) -> Tensor:
    """``scores`` in float32 when they are float16/bfloat16 (under autocast), else unchanged.

    Softmaxes, log-sum-exps and squared errors over similarities need more precision than half types give, so every
    loss computes them in float32; the upcast is differentiable, so gradients flow back in the embeddings' dtype.
    """
    if scores.dtype in (torch.float16, torch.bfloat16):
        return scores.float()
    return scores
