"""What `SentenceEncoder.encode` does around the encoder: texts -> packed batches, and the per-batch results ->
the arrays it returns (sentence embeddings `[n, dim]`, or each text's token states), quantized and placed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from kosim.nn import PackedBatch, pack_flat
from kosim.quantization import quantize_embeddings
from kosim.tokenizer import TextTokenizer
from kosim.utils import ragged

# (rows of the batch's texts in the input, their token counts, the packed batch on the model's device)
Batches = Iterator[tuple[np.ndarray, np.ndarray, PackedBatch]]
Tokenize = Callable[[list[str]], tuple[np.ndarray, np.ndarray]]  # texts -> (flat int64 ids, lengths)


@contextlib.contextmanager
def progress_bar(show: bool, total: int):
    """A tqdm bar of `total` texts while encoding (None when not shown), closed however encoding ends."""
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="Encoding", unit="text")
    try:
        yield bar
    finally:
        bar.close()


def tokenize_fn(tokenizer: TextTokenizer, prompt: str, cache=None) -> Tokenize:
    """`texts -> (flat ids, lengths)` of each text after `prompt`; through `cache` (a `TokenCache`) when given."""
    if cache is not None:
        return lambda texts: cache.encode_flat(tokenizer, prompt, texts)
    return lambda texts: tokenizer.encode_flat([prompt + t for t in texts] if prompt else texts)


def packed_batches(
    tokenize: Tokenize,
    items: list[str],
    batch_size: int,
    chunk_size: int,
    device: torch.device,
    bar=None,
) -> Batches:
    """`(rows, lengths, PackedBatch)` on `device`: `chunk_size` texts tokenized at a time (`tokenize_fn`), longest
    first within a chunk; `rows` are the batch's indices into `items` (numpy)."""
    for start in range(0, len(items), chunk_size):
        chunk = items[start : start + chunk_size]
        ids, lengths = tokenize(chunk)
        offsets = ragged.offsets_from_lengths(lengths)
        order = np.argsort(-lengths, kind="stable")
        for b in range(0, len(order), batch_size):
            rows = order[b : b + batch_size]
            yield (
                start + rows,
                lengths[rows],
                pack_flat(ragged.gather(ids, offsets, rows)[0], lengths[rows]).to(device),
            )
            if bar is not None:
                bar.update(len(rows))


def sentence_outputs(
    embed_batch: Callable[[PackedBatch], Tensor], batches: Batches, shape: tuple[int, int], normalize: bool
) -> np.ndarray:
    """Float32 sentence embeddings `[n, dim]` (numpy) from `embed_batch(batch) -> [seqs, >= dim]`: each batch's
    first `dim` columns, then L2-normalized when asked."""
    out = np.empty(shape, dtype=np.float32)
    for rows, _, batch in batches:
        emb = embed_batch(batch)[:, : shape[1]]  # [seqs, dim]
        if normalize:
            emb = torch.nn.functional.normalize(emb, p=2, dim=-1)
        out[rows] = emb.cpu().numpy()
    return out


def truncate_normalize(embeddings: np.ndarray, dim: int, normalize: bool) -> np.ndarray:
    """What `sentence_outputs` makes of full-width float32 embeddings `[n, >= dim]`: the first `dim` columns, then
    L2-normalized when asked (`[n, dim]`, C-contiguous); the embedding memo keeps full width and serves every
    width and normalization through it."""
    out = np.ascontiguousarray(embeddings[:, :dim])
    if normalize:
        out = torch.nn.functional.normalize(torch.from_numpy(out), p=2, dim=-1).numpy()
    return out


def token_outputs(
    token_states: Callable[[PackedBatch], Tensor], batches: Batches, n: int, to: str, target: torch.device
) -> list:
    """Each text's float32 token states `[len_i, hidden]` in input order (numpy, or tensors on `target`), from
    `token_states(batch) -> [tokens, hidden]`."""
    out: list = [None] * n
    for rows, lengths, batch in batches:
        tokens = token_states(batch).float()  # [tokens, hidden]
        tokens = tokens.to(target) if to == "torch" else tokens.cpu().numpy()
        pieces = tokens.split(lengths.tolist()) if to == "torch" else np.split(tokens, np.cumsum(lengths)[:-1])
        for row, piece in zip(rows.tolist(), pieces):
            out[row] = piece
    return out


def finish(result, precision: str, to: str, target: torch.device, single: bool):
    """encode's last step, the same after one process, a pool or the embedding memo: quantize (ranges from this
    call's embeddings), place, unwrap a single text."""
    if precision != "float32":
        result = quantize_embeddings(result, precision)
    if to == "torch":
        result = (
            [torch.as_tensor(r).to(target) for r in result]
            if isinstance(result, list)
            else torch.as_tensor(result).to(target)
        )
    return result[0] if single else result
