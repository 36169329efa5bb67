"""The training step: a batch's loss and gradients, then the optimizer update.

`loss_backward` is the single place where a batch becomes a loss and gradients (one forward for all columns,
optional cross-process gather, optional GradCache); the Trainer, the benchmarks and the tests all call it.
`optimizer_step` is the single place where gradients become a weight update (unscale, clip, refuse non-finite
gradients, step, count fp16 skips).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from kosim.data.collate import TrainBatch
from kosim.nn.packing import pack_flat
from kosim.training.distributed import gather_no_grad, gather_with_grad

LossFn = Callable[..., Tensor]
LossScale = Callable[[Tensor], Tensor]
SyncContext = Callable[[bool], contextlib.AbstractContextManager]


def embed_columns(model: nn.Module, batch: TrainBatch) -> list[Tensor]:
    """One forward over every column of the batch -> a `[rows, dim]` float32 tensor per column."""
    emb = model(batch.packed).float()  # [columns * rows, dim]
    return list(emb.split(batch.num_rows))


def _loss(loss_fn: LossFn, columns: list[Tensor], batch: TrainBatch, gather: bool) -> Tensor:
    labels, text_ids = batch.labels, batch.text_ids
    if gather:
        columns = [gather_with_grad(c) for c in columns]
        labels = None if labels is None else gather_no_grad(labels)
        text_ids = [gather_no_grad(t) for t in text_ids]
    return loss_fn(columns, labels, text_ids=text_ids)


def loss_backward(
    model: nn.Module,
    loss_fn: LossFn,
    batch: TrainBatch,
    autocast: contextlib.AbstractContextManager | None = None,
    loss_scale: LossScale | None = None,
    mini_batch_size: int | None = None,
    gather: bool = False,
    sync_context: SyncContext | None = None,
) -> Tensor:
    """Compute the batch loss and backpropagate it into the model's `.grad`s; returns the detached loss.

    `loss_scale` maps the loss to what is backpropagated (see `accumulation_scale`); default: the loss itself.
    `mini_batch_size` turns on gradient caching: rows are embedded in mini-batches without a graph, the loss
    and its gradient w.r.t. the embeddings are computed once, and each mini-batch is re-run with grad (replaying
    its RNG state, so dropout masks match) and backpropagated with those embedding gradients.
    `sync_context(last)` wraps each backward (DDP's `no_sync` for all but the last one).
    """
    autocast = autocast or contextlib.nullcontext()
    sync_context = sync_context or (lambda last: contextlib.nullcontext())
    scale = loss_scale or _unscaled
    if mini_batch_size is None or mini_batch_size >= batch.num_rows:
        with autocast:
            columns = embed_columns(model, batch)
        loss = _loss(loss_fn, columns, batch, gather)
        with sync_context(True):
            scale(loss).backward()
        return loss.detach()
    return _cached_loss_backward(model, loss_fn, batch, autocast, scale, mini_batch_size, gather, sync_context)


def _unscaled(loss: Tensor) -> Tensor:
    return loss


def accumulation_scale(scaler: torch.amp.GradScaler, accumulation_steps: int) -> LossScale:
    """What backward sees: the loss shared over the accumulated micro-batches, times the fp16 loss scale (a
    disabled GradScaler leaves it unchanged)."""
    share = 1.0 / accumulation_steps

    def scale(loss: Tensor) -> Tensor:
        return scaler.scale(loss * share)

    return scale


def ddp_sync(model: nn.Module, distributed: bool, last_micro_batch: bool) -> SyncContext:
    """`sync_context` for `loss_backward`: DDP all-reduces gradients only in the very last backward of an
    optimizer step (the last backward of the last accumulated micro-batch); every other one runs in `no_sync`."""

    def context(last_backward: bool) -> contextlib.AbstractContextManager:
        if distributed and not (last_backward and last_micro_batch):
            return model.no_sync()
        return contextlib.nullcontext()

    return context


def mini_batch_rows(batch: TrainBatch, mini_batch_size: int | None, max_tokens: int | None) -> int | None:
    """Rows per GradCache mini-batch: `mini_batch_size`, made smaller when the batch holds more than `max_tokens`
    tokens (estimated from the batch's mean tokens per row). None = no gradient caching."""
    if not max_tokens or batch.packed.num_tokens <= max_tokens:
        return mini_batch_size
    per_row = max(1, batch.packed.num_tokens // max(1, batch.num_rows))
    return min(mini_batch_size or batch.num_rows, max(1, max_tokens // per_row))


@dataclass
class SkipCounter:
    """Optimizer steps the fp16 GradScaler skipped for inf/NaN gradients: in all, and in a row."""

    limit: int  # this many skips in a row end the run
    total: int = 0
    consecutive: int = 0

    def record(self, skipped: bool) -> None:
        self.total += skipped
        self.consecutive = self.consecutive + 1 if skipped else 0

    @property
    def exhausted(self) -> bool:
        return self.consecutive >= self.limit


class StepResult(NamedTuple):
    grad_norm: Tensor  # total gradient norm before clipping (a 0-d tensor; reading it syncs)
    refused: bool  # fp32/bf16 with a non-finite gradient norm: no weight changed, the gradients are cleared


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    parameters: Iterable[Tensor],
    max_grad_norm: float,
    skips: SkipCounter,
) -> StepResult:
    """Unscale, clip to `max_grad_norm`, and step, once the gradients of every micro-batch are accumulated.

    With fp16 (an enabled `scaler`) inf/NaN gradients make the scaler skip the step and lower its scale; `skips`
    counts that. Otherwise a non-finite gradient norm (NaN or inf in any micro-batch) refuses the step before any
    weight changes. The learning-rate schedule and `zero_grad` are the caller's.
    """
    scaler.unscale_(optimizer)  # no-op when disabled
    grad_norm = torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
    if not scaler.is_enabled():
        if not torch.isfinite(grad_norm):
            optimizer.zero_grad(set_to_none=True)
            return StepResult(grad_norm, refused=True)
        optimizer.step()
        return StepResult(grad_norm, refused=False)
    old_scale = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    skips.record(scaler.get_scale() < old_scale)  # a lowered scale means the step was skipped
    return StepResult(grad_norm, refused=False)


class _RngState:
    """CPU and CUDA RNG state, captured before a mini-batch's first forward and replayed before its re-run."""

    def __init__(self, device: torch.device):
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        self.device = device

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


def row_chunks(batch: TrainBatch, size: int) -> list[TrainBatch]:
    """Split a batch into mini-batches of `size` rows (all columns of each row stay together)."""
    packed = batch.packed
    cu = packed.cu_seqlens.cpu().numpy()
    ids = packed.input_ids.cpu().numpy()
    lengths = packed.lengths.cpu().numpy()
    prompts = None if packed.prompt_lengths is None else packed.prompt_lengths.cpu().numpy()
    device = packed.input_ids.device
    chunks = []
    for start in range(0, batch.num_rows, size):
        stop = min(start + size, batch.num_rows)
        seqs = [c * batch.num_rows + i for c in range(batch.num_columns) for i in (start, stop)]
        spans = [ids[cu[a] : cu[b]] for a, b in zip(seqs[::2], seqs[1::2])]
        lens = [lengths[a:b] for a, b in zip(seqs[::2], seqs[1::2])]
        sub_prompts = None if prompts is None else np.concatenate([prompts[a:b] for a, b in zip(seqs[::2], seqs[1::2])])
        sub = pack_flat(np.concatenate(spans), np.concatenate(lens), sub_prompts).to(device)
        chunks.append(
            TrainBatch(
                packed=sub,
                num_columns=batch.num_columns,
                num_rows=stop - start,
                labels=None if batch.labels is None else batch.labels[start:stop],
                text_ids=[t[start:stop] for t in batch.text_ids],
                dataset_index=batch.dataset_index,
            )
        )
    return chunks


def _cached_loss_backward(model, loss_fn, batch, autocast, scale, size, gather, sync_context) -> Tensor:
    chunks = row_chunks(batch, size)
    device = batch.packed.input_ids.device
    states, pieces = [], []
    with torch.no_grad():
        for chunk in chunks:
            states.append(_RngState(device))
            with autocast:
                pieces.append(embed_columns(model, chunk))
    # [rows, dim] per column, leaves whose .grad the loss fills in
    columns = [torch.cat([p[c] for p in pieces]).requires_grad_() for c in range(batch.num_columns)]
    loss = _loss(loss_fn, columns, batch, gather)
    scale(loss).backward()
    grads = [c.grad for c in columns]
    after = _RngState(device)
    offset = 0
    for i, (chunk, state) in enumerate(zip(chunks, states)):
        state.restore()
        with autocast:
            emb = embed_columns(model, chunk)
        surrogate = sum((e * g[offset : offset + chunk.num_rows]).sum() for e, g in zip(emb, grads) if g is not None)
        with sync_context(i == len(chunks) - 1):
            surrogate.backward()
        offset += chunk.num_rows
    after.restore()  # the run continues as if each mini-batch had been drawn once
    return loss.detach()
