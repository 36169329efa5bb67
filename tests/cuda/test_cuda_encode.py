"""CUDA inference: packed attention equals padded attention, and fp16 / bf16 encode tracks float32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import KOREAN

from kosim.model import SentenceEncoder
from kosim.nn import pack

pytestmark = pytest.mark.cuda

TEXTS = KOREAN + [KOREAN[0] * 3, "짧다"]


def test_packed_equals_padded_attention_on_cuda(bert_dir):
    model = SentenceEncoder.load(bert_dir, device="cuda").eval()
    batch = pack(model.tokenize(TEXTS)).to("cuda")
    with torch.no_grad():
        packed = model.encoder(batch)  # [tokens, hidden]
        ids, mask = batch.padded(model.tokenizer.pad_token_id)
        padded = model.encoder.forward_padded(ids, mask)  # [seqs, max_len, hidden]
    flat = padded.reshape(-1, padded.shape[-1]).index_select(0, batch.pad_index)
    torch.testing.assert_close(packed, flat, atol=1e-5, rtol=1e-4)


def test_cuda_encode_equals_cpu(bert_dir):
    cpu = SentenceEncoder.load(bert_dir).encode(TEXTS)
    gpu = SentenceEncoder.load(bert_dir, device="cuda").encode(TEXTS)
    np.testing.assert_allclose(gpu, cpu, atol=1e-4, rtol=0)


@pytest.mark.parametrize("dtype,min_cos", [("float16", 0.999), ("bfloat16", 0.99)])
def test_half_precision_encode_tracks_float32(bert_dir, dtype, min_cos):
    """fp16 keeps 11 significant bits, bf16 8: cosines to float32 of at least 0.999 / 0.99; output is float32."""
    model = SentenceEncoder.load(bert_dir, device="cuda")
    ref = model.encode(TEXTS)
    out = model.encode(TEXTS, dtype=dtype)
    assert out.dtype == np.float32 and out.shape == ref.shape
    cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
    assert float(cos.min()) >= min_cos, cos


def test_minilm_half_precision_encode(minilm):
    from kosim.data import ColumnDataset
    from kosim.data.resources import korsts_path

    texts = ColumnDataset.from_tsv(korsts_path("dev"), columns=["sentence1"]).column("sentence1")[:256]
    model = SentenceEncoder.load(minilm, device="cuda")
    ref = model.encode(texts, batch_size=64)
    for dtype in ("float16", "bfloat16"):
        out = model.encode(texts, batch_size=64, dtype=dtype)
        cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
        assert float(cos.min()) >= 0.99, (dtype, float(cos.min()))
