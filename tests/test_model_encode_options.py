"""encode's truncate_dim, precision, output="token" and device, against sentence-transformers on the same model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kosim.model import SentenceEncoder

st = pytest.importorskip("sentence_transformers")
st_quant = pytest.importorskip("sentence_transformers.util.quantization")

TEXTS = [
    "안전모를 가진 한 남자가 춤을 추고 있다.",
    "아이",
    "한 여성이 고기를 요리하고 있다. 비행기가 이륙하고 있다. 한 남자가 큰 플루트를 연주하고 있다.",
    "The Quick Brown Fox",
    "사람들이 기차를 타고 있다.",
]


@pytest.fixture(scope="module")
def pair(bert_dir, tmp_path_factory):
    """(sentence-transformers model, kosim model) of one directory: mean pooling, a Dense to 24 dims."""
    from sentence_transformers import SentenceTransformer, models

    torch.manual_seed(3)
    transformer = models.Transformer(str(bert_dir), max_seq_length=16)
    modules = [transformer, models.Pooling(32, pooling_mode="mean"), models.Dense(32, 24)]
    ref = SentenceTransformer(modules=modules, device="cpu", prompts={"query": "질문: "})
    path = tmp_path_factory.mktemp("encode_options") / "m"
    ref.save(str(path))
    return ref, SentenceEncoder.load(path), path


def test_token_output_equals_sentence_transformers(pair):
    ref, ours, _ = pair
    for kwargs in ({}, {"prompt_name": "query"}):
        expected = ref.encode(TEXTS, output_value="token_embeddings", batch_size=2, **kwargs)
        got = ours.encode(TEXTS, output="token", batch_size=2, **kwargs)
        assert isinstance(got, list) and len(got) == len(TEXTS)
        for a, b in zip(got, expected):
            assert isinstance(a, np.ndarray) and a.dtype == np.float32
            assert a.shape == tuple(b.shape)  # special tokens included, no padding
            np.testing.assert_allclose(a, b.numpy(), atol=1e-5, rtol=0)
    single = ours.encode(TEXTS[1], output="token")
    np.testing.assert_allclose(single, ref.encode(TEXTS[1], output_value="token_embeddings").numpy(), atol=1e-5)
    tensors = ours.encode(TEXTS, output="token", to="torch")
    assert all(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in tensors)
    assert [t.shape[0] for t in tensors] == [len(ids) for ids in ours.tokenize(TEXTS)]


def test_token_output_is_refused_with_sentence_options(pair):
    _, ours, _ = pair
    with pytest.raises(ValueError, match="normalize and truncate_dim"):
        ours.encode(TEXTS, output="token", normalize=True)
    with pytest.raises(ValueError, match="normalize and truncate_dim"):
        ours.encode(TEXTS, output="token", truncate_dim=4)
    with pytest.raises(ValueError, match="output must be one of"):
        ours.encode(TEXTS, output="token_embeddings")


@pytest.mark.parametrize("precision", ["float32", "int8", "uint8", "binary", "ubinary"])
def test_precision_equals_quantize_embeddings(pair, precision):
    ref, ours, _ = pair
    floats = ours.encode(TEXTS)
    got = ours.encode(TEXTS, precision=precision)
    expected = st_quant.quantize_embeddings(floats, precision)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    torch_out = ours.encode(TEXTS, precision=precision, to="torch")
    assert np.array_equal(torch_out.numpy(), expected)
    tokens = ours.encode(TEXTS, output="token", precision=precision)  # one calibration over every token
    for a, b in zip(tokens, st_quant.quantize_embeddings(ours.encode(TEXTS, output="token"), precision)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    if precision in ("binary", "ubinary"):  # sign bits: the same model gives the same bits in both libraries
        assert np.array_equal(got, ref.encode(TEXTS, precision=precision))


def test_precision_is_validated(pair):
    _, ours, _ = pair
    with pytest.raises(ValueError, match="precision must be one of"):
        ours.encode(TEXTS, precision="fp16")
    with pytest.raises(ValueError, match="more than one embedding"):
        ours.encode(TEXTS[0], precision="int8")


def test_truncate_dim_equals_sentence_transformers(pair):
    ref, ours, path = pair
    for normalize in (False, True):
        expected = ref.encode(TEXTS, truncate_dim=10, normalize_embeddings=normalize)
        got = ours.encode(TEXTS, truncate_dim=10, normalize=normalize)
        assert got.shape == (len(TEXTS), 10)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    loaded = SentenceEncoder.load(path, truncate_dim=6)
    ref6 = st.SentenceTransformer(str(path), device="cpu", truncate_dim=6)
    assert loaded.truncate_dim == 6 and loaded.get_sentence_embedding_dimension() == 6 == (
        ref6.get_embedding_dimension()
    )
    assert loaded.embedding_dim == 24
    np.testing.assert_allclose(
        loaded.encode(TEXTS, normalize=True), ref6.encode(TEXTS, normalize_embeddings=True), atol=1e-5, rtol=0
    )
    assert loaded.encode(TEXTS, truncate_dim=24).shape == (len(TEXTS), 24)  # the call's value wins
    loaded.truncate_dim = None
    assert loaded.encode(TEXTS).shape == (len(TEXTS), 24)


@pytest.mark.parametrize("bad", [0, -1, 25, 2.0, True, "8"])
def test_truncate_dim_is_validated(pair, bad):
    _, ours, path = pair
    with pytest.raises(ValueError, match="truncate_dim"):
        ours.encode(TEXTS, truncate_dim=bad)
    with pytest.raises(ValueError, match="truncate_dim"):
        ours.truncate_dim = bad
    with pytest.raises(ValueError, match="truncate_dim"):
        SentenceEncoder.load(path, truncate_dim=bad)
    assert ours.truncate_dim is None


def test_device_of_the_returned_tensor(pair):
    _, ours, _ = pair
    expected = ours.encode(TEXTS)
    for device in (None, "cpu", torch.device("cpu")):
        out = ours.encode(TEXTS, to="torch", device=device)
        assert out.device.type == "cpu"
        np.testing.assert_array_equal(out.numpy(), expected)
    with pytest.raises(ValueError, match="needs to='torch'"):
        ours.encode(TEXTS, device="cpu")
    with pytest.raises(ValueError, match="invalid device 'cpux'"):
        ours.encode(TEXTS, to="torch", device="cpux")
