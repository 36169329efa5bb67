"""SentenceEncoder against sentence-transformers: encode parity, pooling modes, save/load both ways, bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from kosim.model import SentenceEncoder
from kosim.pooling import POOLING_MODES, Dense, Normalize

st = pytest.importorskip("sentence_transformers")

TEXTS = [
    "안전모를 가진 한 남자가 춤을 추고 있다.",
    "아이",
    "한 여성이 고기를 요리하고 있다. 비행기가 이륙하고 있다. 한 남자가 큰 플루트를 연주하고 있다. 아이가 밖에 있다.",
    "The Quick Brown Fox",
    "사람들이 기차를 타고 있다.",
]


def _st_model(path, modes, include_prompt=True, dense=False, normalize=False, max_seq_length=16):
    from sentence_transformers import SentenceTransformer, models

    transformer = models.Transformer(str(path), max_seq_length=max_seq_length)
    dim = (
        transformer.get_embedding_dimension()
        if hasattr(transformer, "get_embedding_dimension")
        else transformer.get_word_embedding_dimension()
    )
    modules = [transformer, models.Pooling(dim, pooling_mode=modes, include_prompt=include_prompt)]
    if dense:
        torch.manual_seed(1)
        modules.append(models.Dense(dim * len(modes), 8, activation_function=torch.nn.Tanh()))
    if normalize:
        modules.append(models.Normalize())
    return SentenceTransformer(modules=modules, device="cpu")


def _max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


@pytest.mark.parametrize("kind", ["bert_dir", "roberta_dir", "xlmr_dir"])
@pytest.mark.parametrize("mode", POOLING_MODES)
def test_st_directory_loads_with_equal_embeddings(kind, mode, request, tmp_path):
    ref = _st_model(request.getfixturevalue(kind), mode)
    ref.save(str(tmp_path / "m"))
    ours = SentenceEncoder.load(tmp_path / "m")
    assert ours.max_seq_length == 16
    assert _max_diff(ours.encode(TEXTS, batch_size=2), ref.encode(TEXTS, batch_size=2)) <= 1e-5


def test_concatenated_modes_dense_normalize(bert_dir, tmp_path):
    modes = ["mean", "cls", "max"]
    ref = _st_model(bert_dir, modes, dense=True, normalize=True)
    ref.save(str(tmp_path / "m"))
    ours = SentenceEncoder.load(tmp_path / "m")
    assert isinstance(ours.post[0], Dense) and isinstance(ours.post[1], Normalize)
    assert ours.embedding_dim == 8
    assert _max_diff(ours.encode(TEXTS), ref.encode(TEXTS)) <= 1e-5


def test_include_prompt_false(bert_dir, tmp_path):
    ref = _st_model(bert_dir, ["mean", "cls", "weightedmean", "max"], include_prompt=False)
    ref.save(str(tmp_path / "m"))
    ours = SentenceEncoder.load(tmp_path / "m")
    prompt = "질문: "
    got = ours.encode(TEXTS, prompt=prompt)
    expected = ref.encode(TEXTS, prompt=prompt)
    assert _max_diff(got, expected) <= 1e-5
    assert _max_diff(got, ours.encode(TEXTS)) > 1e-3  # the prompt really is left out, not ignored


@pytest.mark.parametrize("kind", ["bert_dir", "roberta_dir"])
def test_kosim_save_loads_in_sentence_transformers(kind, request, tmp_path):
    ours = SentenceEncoder.load(request.getfixturevalue(kind))
    ours.max_seq_length = 12
    ours.save(tmp_path / "k")
    ref = st.SentenceTransformer(str(tmp_path / "k"), device="cpu")
    assert ref.max_seq_length == 12
    assert _max_diff(ours.encode(TEXTS), ref.encode(TEXTS)) <= 1e-5
    again = SentenceEncoder.load(tmp_path / "k")
    assert np.array_equal(again.encode(TEXTS), ours.encode(TEXTS))


@pytest.mark.parametrize("kind", ["bert_dir", "roberta_dir"])
def test_saved_model_keeps_the_source_pooler_for_transformers(kind, request, tmp_path):
    # the pooler is unused by sentence embeddings but part of transformers' BertModel / RobertaModel: it is
    # written back unchanged, so loading the saved model initialises nothing
    import transformers
    from safetensors.torch import load_file

    src = request.getfixturevalue(kind)
    ours = SentenceEncoder.load(src)
    ours.save(tmp_path / "k")
    model, info = transformers.AutoModel.from_pretrained(str(tmp_path / "k"), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    source = transformers.AutoModel.from_pretrained(str(src))
    for name in ("pooler.dense.weight", "pooler.dense.bias"):
        assert torch.equal(model.state_dict()[name], source.state_dict()[name]), name
    saved = load_file(str(tmp_path / "k" / "model.safetensors"))
    assert {k for k in saved if k.startswith("pooler.")} == {"pooler.dense.weight", "pooler.dense.bias"}
    assert not any(k.startswith("pooler.") for k in dict(ours.encoder.named_parameters()))  # never trained


def test_plain_transformers_checkpoint_gets_mean_pooling(bert_dir):
    ours = SentenceEncoder.load(bert_dir)
    assert ours.pooling.modes == ("mean",)
    assert ours.max_seq_length == 64  # tokenizer says 512, capped by the 64-row position table
    ref = _st_model(bert_dir, "mean", max_seq_length=64)
    assert _max_diff(ours.encode(TEXTS), ref.encode(TEXTS)) <= 1e-5


def test_real_minilm_matches_sentence_transformers(minilm):
    ours = SentenceEncoder.load(minilm)
    ref = st.SentenceTransformer(str(minilm), device="cpu")
    from kosim.data.resources import korsts_path

    lines = korsts_path("dev").read_text(encoding="utf-8").splitlines()[1:]
    sentences = [s for line in lines for s in line.split("\t")[5:7]]
    assert len(sentences) == 3000
    got = ours.encode(sentences, batch_size=64)
    expected = ref.encode(sentences, batch_size=64)
    assert _max_diff(got, expected) <= 1e-5


def test_encode_shapes_and_order(bert_dir):
    ours = SentenceEncoder.load(bert_dir)
    batch = ours.encode(TEXTS, batch_size=2)
    assert batch.shape == (len(TEXTS), ours.embedding_dim) and batch.dtype == np.float32
    for i, text in enumerate(TEXTS):
        assert _max_diff(ours.encode(text), batch[i]) <= 1e-5
    assert ours.encode([]).shape == (0, ours.embedding_dim)
    assert isinstance(ours.encode(TEXTS, to="torch"), torch.Tensor)
    normed = ours.encode(TEXTS, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, atol=1e-5)


def test_bfloat16_encode_close_to_float32(bert_dir):
    ours = SentenceEncoder.load(bert_dir)
    full = torch.from_numpy(ours.encode(TEXTS))
    half = torch.from_numpy(ours.encode(TEXTS, dtype="bfloat16"))
    assert half.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(full, half).min().item() > 0.99


def test_truncation_and_lower_case(bert_dir, tmp_path):
    ours = SentenceEncoder.load(bert_dir)
    ours.max_seq_length = 4
    assert max(len(ids) for ids in ours.tokenize(TEXTS)) == 4
    ours.tokenizer.do_lower_case = True
    assert ours.tokenize(["ABC"]) == ours.tokenize(["abc"])


def test_similarity_signs(bert_dir):
    ours = SentenceEncoder.load(bert_dir)
    emb = ours.encode(TEXTS[:3])
    for fn in ("cosine", "dot", "euclidean", "manhattan"):
        ref = st.util.similarity.__dict__
        got = ours.similarity(emb, emb, fn=fn)
        assert got.shape == (3, 3)
        expected = {
            "cosine": ref["cos_sim"],
            "dot": ref["dot_score"],
            "euclidean": ref["euclidean_sim"],
            "manhattan": ref["manhattan_sim"],
        }[fn](torch.from_numpy(emb), torch.from_numpy(emb))
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert ours.similarity(emb, emb).diagonal().sub(1).abs().max() < 1e-5  # default from the saved config: cosine


@pytest.mark.parametrize(
    ("texts", "error", "match"),
    [
        (["ok", 3], TypeError, r"texts\[1\]"),
        ([None], TypeError, r"texts\[0\]"),
        (42, TypeError, "texts must be"),
        (b"bytes", TypeError, "texts must be"),
    ],
)
def test_bad_encode_input(bert_dir, texts, error, match):
    ours = SentenceEncoder.load(bert_dir)
    with pytest.raises(error, match=match):
        ours.encode(texts)


def test_bad_max_seq_length(bert_dir):
    ours = SentenceEncoder.load(bert_dir)
    with pytest.raises(ValueError, match="max_seq_length"):
        ours.max_seq_length = 10_000


def test_importing_kosim_never_imports_sentence_transformers(bert_dir):
    code = (
        "import sys, kosim, kosim.model, kosim.nn\n"
        f"m = kosim.model.SentenceEncoder.load({str(bert_dir)!r})\n"
        "m.encode(['안녕'])\n"
        "assert 'sentence_transformers' not in sys.modules, 'imported sentence_transformers'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
