"""TextTokenizer's direct `tokenizers` path gives exactly the ids of the transformers tokenizer call."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from kosim.model import SentenceEncoder
from kosim.tokenizer import TextTokenizer

TEXTS = [
    "안전모를 가진 한 남자가 춤을 추고 있다.",
    "아이",
    "The Quick Brown Fox [SEP] jumps over [MASK] the lazy dog.",
    "",
    "한 여성이 고기를 요리하고 있다. 비행기가 이륙하고 있다. 한 남자가 큰 플루트를 연주하고 있다. 아이가 밖에 있다."
    * 3,
    "  spaces \t and\nnewlines  ",
]


def _hf_ids(tok: TextTokenizer, texts):
    texts = [t.lower() for t in texts] if tok.do_lower_case else list(texts)
    out = tok.hf(
        texts,
        add_special_tokens=True,
        truncation=True,
        max_length=tok.max_seq_length,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    return out["input_ids"]


def _check(tok: TextTokenizer, texts):
    assert tok._fast_backend() is not None
    expected = _hf_ids(tok, texts)
    assert tok(texts) == expected
    flat, lengths = tok.encode_flat(texts)
    assert lengths.tolist() == [len(ids) for ids in expected]
    assert flat.dtype == np.int64 and flat.tolist() == [t for ids in expected for t in ids]


@pytest.mark.parametrize("kind", ["bert_dir", "roberta_dir", "xlmr_dir"])
def test_fast_path_equals_transformers(kind, request):
    tok = SentenceEncoder.load(request.getfixturevalue(kind)).tokenizer
    _check(tok, TEXTS)
    tok.max_seq_length = 5  # truncation follows max_seq_length changes
    _check(tok, TEXTS)
    tok.do_lower_case = True
    _check(tok, TEXTS)
    tok.hf.truncation_side = "left"
    _check(tok, TEXTS)


def test_fast_path_on_real_minilm(minilm):
    from kosim.data.resources import korsts_path

    tok = SentenceEncoder.load(minilm).tokenizer
    assert tok.do_lower_case is False and tok.max_seq_length == 256
    lines = korsts_path("dev").read_text(encoding="utf-8").splitlines()[1:]
    sentences = [s for line in lines for s in line.split("\t")[5:7]]
    _check(tok, sentences + TEXTS)
    tok.max_seq_length = 16
    tok.do_lower_case = True
    _check(tok, sentences[:500])


def test_copy_and_pickle_keep_working(bert_dir):
    tok = SentenceEncoder.load(bert_dir).tokenizer
    tok(TEXTS)
    for clone in (copy.deepcopy(tok), pickle.loads(pickle.dumps(tok))):
        assert clone(TEXTS) == tok(TEXTS)


@pytest.mark.parametrize("lower", [False, True])
def test_tokenizing_leaves_the_callers_strings_as_they_were(bert_dir, lower):
    """CPython caches a UTF-8 copy inside a non-ASCII str handed to Rust; tokenizing must not do that to the
    caller's strings, or memory grows with every text ever encoded (see bench_memory.py)."""
    import sys

    tok = SentenceEncoder.load(bert_dir).tokenizer
    tok.do_lower_case = lower
    texts = [f"{TEXTS[0]} {i}" for i in range(200)]
    sizes = [sys.getsizeof(t) for t in texts]
    ids = tok(texts)
    assert [sys.getsizeof(t) for t in texts] == sizes
    assert ids == _hf_ids(tok, texts)
    # the unguarded call does grow them: what the test guards against is real
    tok._fast_backend().encode_batch(texts)
    assert sum(sys.getsizeof(t) for t in texts) > sum(sizes)
