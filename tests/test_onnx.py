"""kosim.onnx: the exported graph gives kosim's `encode` embeddings (fp32 <= 1e-4), with dynamic batch/length axes."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from helpers import KOREAN  # noqa: E402

from kosim.model import SentenceEncoder  # noqa: E402
from kosim.onnx import FP32_FILE, INT8_FILE, ONNX_DIR, OnnxEncoder, export_onnx  # noqa: E402
from kosim.pooling import POOLING_MODES, Dense, Normalize, Pooling  # noqa: E402

TEXTS = KOREAN + [KOREAN[0] * 4, "짧다", "a"]  # lengths from 3 tokens to the 64-token cap of the tiny models


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def bert_export(bert_dir, tmp_path_factory):
    """The tiny BERT exported by the CLI (`kosim export DIR --format onnx --int8 --output OUT`)."""
    from kosim.cli import export as cli_export

    out = tmp_path_factory.mktemp("bert_onnx")
    parser = argparse.ArgumentParser()
    cli_export.add_arguments(parser)
    args = parser.parse_args([str(bert_dir), "--format", "onnx", "--int8", "--output", str(out)])
    assert cli_export.run(args) == 0
    return out


@pytest.fixture(scope="module")
def all_modes_export(bert_dir, tmp_path_factory):
    """A SentenceEncoder object with every pooling mode, a Dense and a Normalize, exported without int8."""
    base = SentenceEncoder.load(bert_dir)
    pooling = Pooling(base.encoder.hidden_size, list(POOLING_MODES))
    model = SentenceEncoder(base.encoder, base.tokenizer, pooling, [Dense(pooling.output_dim, 16), Normalize()])
    out = export_onnx(model, tmp_path_factory.mktemp("modes_onnx"))
    return model, out


def test_layout_and_io_names(bert_export):
    import onnx

    assert (bert_export / ONNX_DIR / FP32_FILE).is_file() and (bert_export / ONNX_DIR / INT8_FILE).is_file()
    assert json.loads((bert_export / "modules.json").read_text())[0]["type"].endswith("Transformer")
    graph = onnx.load(str(bert_export / ONNX_DIR / FP32_FILE)).graph
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in graph.input}
    assert dims == {name: ["batch", "sequence"] for name in ("input_ids", "attention_mask", "token_type_ids")}
    assert [o.name for o in graph.output] == ["last_hidden_state", "sentence_embedding"]


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_parity_with_encode(bert_dir, bert_export, batch_size):
    """Batches of 1, 3 and all texts: the batch and sequence axes take every size (dynamic axes)."""
    ref = SentenceEncoder.load(bert_dir).encode(TEXTS, batch_size=batch_size)
    out = OnnxEncoder(bert_export).encode(TEXTS, batch_size=batch_size)
    assert out.shape == ref.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)
    single = OnnxEncoder(bert_export).encode(TEXTS[2])
    np.testing.assert_allclose(single, ref[2], atol=1e-4, rtol=0)


def test_token_states_have_dynamic_shapes(bert_dir, bert_export):
    """`last_hidden_state` (what sentence-transformers pools) equals kosim's padded token states at two shapes."""
    import onnxruntime as ort
    import torch

    model = SentenceEncoder.load(bert_dir).eval()
    session = ort.InferenceSession(str(bert_export / ONNX_DIR / FP32_FILE), providers=["CPUExecutionProvider"])
    for batch, seq in ((2, 5), (5, 17)):
        ids = np.random.default_rng(batch).integers(5, model.tokenizer.vocab_size, (batch, seq))
        mask = np.ones((batch, seq), dtype=np.int64)
        mask[0, seq // 2 :] = 0
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        states, emb = session.run(None, feed)
        assert states.shape == (batch, seq, model.encoder.hidden_size) and emb.shape == (batch, model.embedding_dim)
        with torch.no_grad():
            ref = model.encoder.forward_padded(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        keep = mask.astype(bool)
        np.testing.assert_allclose(states[keep], ref[keep], atol=1e-4, rtol=0)


def test_every_pooling_mode_dense_and_normalize(all_modes_export):
    model, out = all_modes_export
    ref = model.encode(TEXTS, batch_size=4)
    got = OnnxEncoder(out).encode(TEXTS, batch_size=4)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_int8_export_close_to_fp32(bert_export):
    fp32 = OnnxEncoder(bert_export).encode(TEXTS)
    int8 = OnnxEncoder(bert_export, int8=True).encode(TEXTS)
    assert float(_cos(int8, fp32).min()) >= 0.99


def test_missing_export_is_named(bert_dir):
    with pytest.raises(FileNotFoundError, match="kosim export"):
        OnnxEncoder(bert_dir)


@pytest.fixture(scope="module")
def minilm_export(minilm, tmp_path_factory):
    return export_onnx(minilm, tmp_path_factory.mktemp("minilm_onnx"), int8=True)


def test_minilm_parity_and_int8(minilm, minilm_export):
    from kosim.data import ColumnDataset
    from kosim.data.resources import korsts_path

    sentences = ColumnDataset.from_tsv(korsts_path("dev"), columns=["sentence1"]).column("sentence1")[:64]
    ref = SentenceEncoder.load(minilm).encode(sentences, batch_size=16)
    fp32 = OnnxEncoder(minilm_export).encode(sentences, batch_size=16)
    np.testing.assert_allclose(fp32, ref, atol=1e-4, rtol=0)
    int8 = OnnxEncoder(minilm_export, int8=True).encode(sentences, batch_size=16)
    assert float(_cos(int8, ref).mean()) >= 0.98  # onnxruntime's per-tensor dynamic int8 (measured 0.989 mean)


def test_sentence_transformers_onnx_backend_loads_the_export(bert_dir, bert_export):
    """Needs optimum's onnxruntime integration, which sentence-transformers' ONNX backend is built on."""
    pytest.importorskip("optimum.onnxruntime")
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(bert_export), backend="onnx", device="cpu")
    ref = SentenceEncoder.load(bert_dir).encode(TEXTS)
    np.testing.assert_allclose(st.encode(TEXTS), ref, atol=1e-4, rtol=0)
