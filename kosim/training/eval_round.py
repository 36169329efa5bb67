"""One evaluation round of the Trainer: the validation loss of every eval dataset, from per-text embeddings.

Losses are functions of embeddings, so a validation loss only needs each column's `[rows, dim]` embeddings: they
come from the model's embedding memo (`SentenceEncoder.embedding_memo`, open for the whole round), so a text that
an evaluator encodes too, or that repeats inside or across eval datasets, is embedded once per round. The loss is
then taken over the same consecutive batches of `per_device_eval_batch_size` rows as a batch-by-batch forward
would give (in-batch negatives see the same rows) and averaged weighted by rows.

Which embeddings: under float32 training, `encode`'s float32 ones, the very ones the evaluators read (the inference
path agrees with the training forward to float rounding). Under bf16 / fp16 autocast the loss keeps the training
forward under autocast (a distinct memo key: bf16 numbers are not float32 ones), each distinct text embedded once.

A GIST eval loss still indexes its guide table (the frozen guide's embeddings of the eval dataset's texts, built
once by `bind_guides`) by the rows' text ids; only the student's embeddings come from the memo. Several eval
datasets share the round's memo, so a text in two of them (under the same prompt) is embedded once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from kosim.data.datasets import ColumnDataset
from kosim.embedding_memo import EmbeddingMemo
from kosim.encode_output import packed_batches, sentence_outputs, tokenize_fn
from kosim.model import SentenceEncoder
from kosim.precision import autocast

__all__ = ["column_embeddings", "validation_losses"]

EvalLoss = Callable[[str, ColumnDataset, torch.device], nn.Module]


def column_embeddings(
    model: SentenceEncoder,
    memo: EmbeddingMemo,
    data: ColumnDataset,
    prompts: Mapping[str, str],
    batch_size: int,
    dtype: str,
) -> list[Tensor]:
    """One float32 `[rows, dim]` tensor per column of `data` on the model's device, each column's texts after its
    prompt (`prompts[column]`, else none: the model's default prompt does not apply, as in training), at the
    model's full width (its `truncate_dim` does not apply: training losses see every dimension)."""
    out = []
    for column in data.column_names:
        texts, prompt = data.column(column), prompts.get(column, "")
        if dtype == "float32":  # SentenceEncoder's own encode, also for a kosim.st model (whose encode differs)
            emb = SentenceEncoder.encode(
                model, texts, batch_size, prompt=prompt, truncate_dim=model.embedding_dim, to="torch", progress=False
            )
        else:
            key = ("forward", prompt, model.tokenizer.ids_key(), dtype)
            emb = torch.from_numpy(memo.embed(key, texts, _forward_embed(model, memo, prompt, batch_size, dtype)))
        out.append(emb.to(model.device))
    return out


def _forward_embed(model: SentenceEncoder, memo: EmbeddingMemo, prompt: str, batch_size: int, dtype: str) -> Callable:
    """`texts -> [n, dim]` float32: the model's training forward under `dtype` autocast (no autograd)."""
    prompt_length = model.tokenizer.prompt_length(prompt) if prompt else 0
    device = model.device

    def embed(texts: list[str]) -> np.ndarray:
        batches = packed_batches(tokenize_fn(model.tokenizer, prompt, memo.tokens), texts, batch_size, 16384, device)
        with autocast(device, dtype):
            return sentence_outputs(
                lambda b: model(b, prompt_length).float(), batches, (len(texts), model.embedding_dim), False
            )

    return embed


@torch.no_grad()
def validation_losses(
    model: SentenceEncoder,
    datasets: Mapping[str, ColumnDataset],
    eval_loss: EvalLoss,
    prompts: Mapping[str, Mapping[str, str]],
    batch_size: int,
    dtype: str,
) -> dict[str, float]:
    """`{"validation_loss": mean}` (one eval dataset) or `{"<name>_validation_loss": mean, ...}`, the model in eval
    mode meanwhile; `eval_loss(name, data, device)` is each dataset's loss, `prompts[name]` its `{column: prompt}`."""
    out: dict[str, float] = {}
    device = model.device
    was = model.training
    model.eval()
    try:
        with model.embedding_memo() as memo:
            for name, data in datasets.items():
                loss_fn = eval_loss(name, data, device)
                columns = column_embeddings(model, memo, data, prompts.get(name, {}), batch_size, dtype)
                labels = None if data.labels is None else torch.from_numpy(data.labels.astype(np.float32)).to(device)
                text_ids = [torch.from_numpy(t).to(device) for t in data.text_ids]
                total = torch.zeros((), device=device)
                for start in range(0, len(data), batch_size):
                    rows = slice(start, start + batch_size)
                    loss = loss_fn(
                        [c[rows] for c in columns],
                        None if labels is None else labels[rows],
                        text_ids=[t[rows] for t in text_ids],
                    )
                    total += loss * len(columns[0][rows])
                key = "validation_loss" if len(datasets) == 1 else f"{name}_validation_loss"
                out[key] = (total / max(len(data), 1)).item()
    finally:
        model.train(was)
    return out
