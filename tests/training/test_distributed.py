"""Two gloo processes with gathered negatives = one process on the combined batch (loss and gradients)."""

from __future__ import annotations

import os
import socket

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from kosim.data.collate import collate, split_rows
from kosim.data.datasets import ColumnDataset
from kosim.losses import MultipleNegativesRankingLoss
from kosim.model import SentenceEncoder
from kosim.training.step import loss_backward

TEXTS = [f"문장 번호 {i} 은 테스트 {i * 7 % 13} 입니다" for i in range(24)]


def _dataset():
    return ColumnDataset({"a": TEXTS[:8], "p": TEXTS[8:16], "n": TEXTS[16:]})


def _worker(rank: int, world: int, port: int, model_dir: str, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = SentenceEncoder.load(model_dir).eval()
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        tok = _dataset().tokenize(model.tokenize)
        batch = collate(tok, split_rows(np.arange(8), rank, world))
        loss = loss_backward(ddp, MultipleNegativesRankingLoss(), batch, gather=True)
        if rank == 0:
            grads = {n: p.grad for n, p in model.named_parameters()}
            torch.save({"loss": loss, "grads": grads}, os.path.join(out_dir, "ddp.pt"))
    finally:
        dist.destroy_process_group()


def test_gathered_ddp_equals_single_process(bert_dir, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(2, port, str(bert_dir), str(tmp_path)), nprocs=2, join=True)
    got = torch.load(tmp_path / "ddp.pt", weights_only=True)

    model = SentenceEncoder.load(bert_dir).eval()
    batch = collate(_dataset().tokenize(model.tokenize), np.arange(8))
    loss = loss_backward(model, MultipleNegativesRankingLoss(), batch)
    assert abs(loss.item() - got["loss"].item()) <= 1e-5
    for name, p in model.named_parameters():
        torch.testing.assert_close(got["grads"][name], p.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_split_rows_is_a_partition():
    rows = np.arange(10)
    parts = [split_rows(rows, r, 3) for r in range(3)]
    assert np.array_equal(np.concatenate(parts), rows)
