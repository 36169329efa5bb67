"""The training step's loss: one forward for all columns, optional cross-process gather, optional GradCache.

`loss_backward` is the single place where a batch becomes a loss and gradients; the Trainer, the benchmarks and
the tests all call it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from kosim.data.collate import TrainBatch
from kosim.nn.packing import pack_flat
from kosim.training.distributed import gather_no_grad, gather_with_grad

LossFn = Callable[..., Tensor]


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
    loss_scale: float | Callable[[Tensor], Tensor] = 1.0,
    mini_batch_size: int | None = None,
    gather: bool = False,
    sync_context: Callable[[bool], contextlib.AbstractContextManager] | None = None,
) -> Tensor:
    """Compute the batch loss and backpropagate it into the model's `.grad`s; returns the detached loss.

    `loss_scale` multiplies the loss before backward (gradient accumulation, or a GradScaler's `scale`).
    `mini_batch_size` turns on gradient caching: rows are embedded in mini-batches without a graph, the loss
    and its gradient w.r.t. the embeddings are computed once, and each mini-batch is re-run with grad (replaying
    its RNG state, so dropout masks match) and backpropagated with those embedding gradients.
    `sync_context(last)` wraps each backward (DDP's `no_sync` for all but the last one).
    """
    autocast = autocast or contextlib.nullcontext()
    sync_context = sync_context or (lambda last: contextlib.nullcontext())
    scale = loss_scale if callable(loss_scale) else (lambda t: t * loss_scale)
    if mini_batch_size is None or mini_batch_size >= batch.num_rows:
        with autocast:
            columns = embed_columns(model, batch)
        loss = _loss(loss_fn, columns, batch, gather)
        with sync_context(True):
            scale(loss).backward()
        return loss.detach()
    return _cached_loss_backward(model, loss_fn, batch, autocast, scale, mini_batch_size, gather, sync_context)


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
    device = packed.input_ids.device
    chunks = []
    for start in range(0, batch.num_rows, size):
        stop = min(start + size, batch.num_rows)
        seqs = [c * batch.num_rows + i for c in range(batch.num_columns) for i in (start, stop)]
        spans = [ids[cu[a] : cu[b]] for a, b in zip(seqs[::2], seqs[1::2])]
        lens = [lengths[a:b] for a, b in zip(seqs[::2], seqs[1::2])]
        sub = pack_flat(np.concatenate(spans), np.concatenate(lens)).to(device)
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
