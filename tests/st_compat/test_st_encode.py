"""encode / similarity / tokenize / save through sentence-transformers and through kosim.st: equal results."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import KOREAN

from kosim.st.model import core_encode_supports

st = pytest.importorskip("sentence_transformers")

OPTIONS = [
    {},
    {"normalize_embeddings": True},
    {"convert_to_tensor": True},
    {"convert_to_numpy": False},
    {"batch_size": 3, "show_progress_bar": False},
    {"prompt": "검색: "},
    {"prompt_name": "query"},
    {"prompt": "검색: ", "prompt_name": "query"},
]


def _same(a, b, atol=1e-5):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y, atol)
        return
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.device == b.device
        a, b = a.numpy(), b.numpy()
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), atol=atol, rtol=0)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "defaults")
@pytest.mark.parametrize("single", [False, True], ids=["list", "str"])
def test_encode_options(models, options, single):
    theirs, ours = models
    texts = KOREAN[0] if single else KOREAN
    _same(theirs.encode(texts, **options), ours.encode(texts, **options))


@pytest.mark.parametrize("method", ["encode_query", "encode_document"])
def test_encode_roles(models, method):
    theirs, ours = models
    _same(getattr(theirs, method)(KOREAN), getattr(ours, method)(KOREAN))
    _same(getattr(theirs, method)(KOREAN, prompt="x: "), getattr(ours, method)(KOREAN, prompt="x: "))


def _needs_core(name):
    return pytest.mark.skipif(
        not core_encode_supports(name), reason=f"kosim's SentenceEncoder.encode has no {name}= yet (issue 16 point 3)"
    )


@_needs_core("truncate_dim")
@pytest.mark.parametrize("normalize", [False, True])
def test_encode_truncate_dim(models, normalize):
    theirs, ours = models
    kwargs = {"truncate_dim": 8, "normalize_embeddings": normalize}
    _same(theirs.encode(KOREAN, **kwargs), ours.encode(KOREAN, **kwargs))


@_needs_core("precision")
@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_encode_precision(models, precision):
    theirs, ours = models
    _same(theirs.encode(KOREAN, precision=precision), ours.encode(KOREAN, precision=precision), atol=0)


@_needs_core("output")
def test_encode_token_embeddings(models):
    theirs, ours = models
    _same(theirs.encode(KOREAN, output_value="token_embeddings"), ours.encode(KOREAN, output_value="token_embeddings"))


def test_unsupported_options_raise_naming_them(models):
    _, ours = models
    with pytest.raises(TypeError, match="pool"):
        ours.encode(KOREAN, pool={"processes": []})
    with pytest.raises(ValueError, match="output_value"):
        ours.encode(KOREAN, output_value=None)
    with pytest.raises(ValueError, match="precision"):
        ours.encode(KOREAN, precision="float16")


def test_kosim_keywords_still_work(models):
    """kosim's internals (mining, GIST guides) call encode with kosim's own keywords."""
    _, ours = models
    a = ours.encode(KOREAN, normalize=True, to="torch", progress=False)
    b = ours.encode(KOREAN, normalize_embeddings=True, convert_to_tensor=True)
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_similarity_and_attributes(models):
    theirs, ours = models
    a, b = ours.encode(KOREAN[:4]), ours.encode(KOREAN[4:])
    for fn in ("cosine", "dot", "euclidean", "manhattan"):
        theirs.similarity_fn_name = fn
        ours.similarity_fn_name = fn
        _same(theirs.similarity(a, b), ours.similarity(a, b))
        _same(theirs.similarity_pairwise(a, b), ours.similarity_pairwise(a, b))
    theirs.similarity_fn_name = ours.similarity_fn_name = "cosine"
    assert ours.get_sentence_embedding_dimension() == theirs.get_sentence_embedding_dimension()
    assert ours.max_seq_length == theirs.max_seq_length
    t, o = theirs.tokenize(KOREAN), ours.tokenize(KOREAN)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        torch.testing.assert_close(o[key], t[key])


def test_similarity_fn_name_checked_when_assigned(models):
    _, ours = models
    with pytest.raises(ValueError, match="cosinee"):
        ours.similarity_fn_name = "cosinee"
    assert ours.similarity_fn_name == "cosine"
    from kosim.st import SimilarityFunction

    ours.similarity_fn_name = SimilarityFunction.DOT_PRODUCT
    assert ours.similarity_fn_name == "dot"
    ours.similarity_fn_name = "cosine"


def test_constructor_checks(bert_dir):
    from kosim.st import SentenceTransformer

    with pytest.raises(ValueError, match="default_prompt_name 'nope'"):
        SentenceTransformer(str(bert_dir), device="cpu", prompts={"query": "q: "}, default_prompt_name="nope")
    with pytest.raises(TypeError, match="revision"):
        SentenceTransformer(str(bert_dir), device="cpu", revision="main")
    with pytest.raises(TypeError, match="no_such_option"):
        SentenceTransformer(str(bert_dir), device="cpu", no_such_option=1)
    model = SentenceTransformer(str(bert_dir), device="cpu", similarity_fn_name="dot", truncate_dim=8)
    assert model.similarity_fn_name == "dot" and model.get_sentence_embedding_dimension() == 8


def test_save_load_both_ways(models, tmp_path):
    from kosim.st import SentenceTransformer

    theirs, ours = models
    expected = theirs.encode(KOREAN)
    ours.save(str(tmp_path / "ours"))
    theirs.save(str(tmp_path / "theirs"))
    from_ours = st.SentenceTransformer(str(tmp_path / "ours"), device="cpu")
    from_theirs = SentenceTransformer(str(tmp_path / "theirs"), device="cpu")
    _same(from_ours.encode(KOREAN), expected)
    _same(from_theirs.encode(KOREAN), expected)
    assert from_ours.prompts == theirs.prompts and from_theirs.prompts == theirs.prompts
    ours.save_pretrained(str(tmp_path / "pretrained"))
    _same(SentenceTransformer(str(tmp_path / "pretrained"), device="cpu").encode(KOREAN), expected)
