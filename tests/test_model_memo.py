"""SentenceEncoder.embedding_memo: inside it, encode embeds each distinct input once and returns what it returns
without the memo, whatever the options (prompt, width, normalization, dtype, precision)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import KOREAN

from kosim.model import SentenceEncoder

TEXTS = [t for t in KOREAN if not t.isascii()]


@pytest.fixture(scope="module")
def model(bert_dir) -> SentenceEncoder:
    return SentenceEncoder.load(bert_dir)


def _count_sequences(model: SentenceEncoder, monkeypatch) -> list[int]:
    seen: list[int] = []
    infer = model.encoder.infer

    def counted(batch, *args, **kwargs):
        seen.append(batch.num_seqs)
        return infer(batch, *args, **kwargs)

    monkeypatch.setattr(model.encoder, "infer", counted)
    return seen


OPTIONS = [
    {},
    {"prompt": "질문: "},
    {"normalize": True},
    {"truncate_dim": 8},
    {"truncate_dim": 8, "normalize": True},
    {"dtype": "bfloat16"},
    {"to": "torch"},
    {"to": "torch", "device": "cpu"},
    {"dtype": "int8"},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_memo_returns_what_encode_returns_without_it(model, options):
    subset = TEXTS[1:4]
    expected_all, expected_subset = model.encode(TEXTS, **options), model.encode(subset, **options)
    with model.embedding_memo():
        model.encode(TEXTS[::-1], batch_size=3)  # fills the memo for the default options, other batches
        got_all = model.encode(TEXTS, **options)
        got_subset = model.encode(subset, **options)  # from the memo
    for got, expected in ((got_all, expected_all), (got_subset, expected_subset)):
        assert type(got) is type(expected) and got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=0, atol=1e-6)


@pytest.mark.parametrize("precision", ["int8", "ubinary"])
def test_memo_quantizes_each_call_by_its_own_embeddings(model, precision):
    from kosim.quantization import quantize_embeddings

    with model.embedding_memo():
        model.encode(TEXTS)
        floats = model.encode(TEXTS[1:4])  # from the memo
        got = model.encode(TEXTS[1:4], precision=precision)  # ranges from these three, not from all of TEXTS
    expected = quantize_embeddings(floats, precision)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_each_distinct_input_is_embedded_once(model, monkeypatch):
    seen = _count_sequences(model, monkeypatch)
    with model.embedding_memo() as memo:
        model.encode(TEXTS + TEXTS[:3])  # duplicates inside one call: once
        model.encode(TEXTS[2:5], batch_size=2)  # all known
        model.encode("안녕하세요")  # one new
        assert sum(seen) == len(TEXTS) + 1 == memo.embedded
        model.encode(TEXTS[:2], prompt="질문: ")  # another prompt: another input
        model.encode(TEXTS[:2], dtype="bfloat16")
        assert sum(seen) == len(TEXTS) + 1 + 4
        model.encode(TEXTS[:2], normalize=True)  # normalized / truncated from the full-width entries: known
        model.encode(TEXTS[:3], truncate_dim=8)
        model.encode(TEXTS[:3], truncate_dim=16, normalize=True, precision="int8")
        assert sum(seen) == len(TEXTS) + 1 + 4
        with model.embedding_memo() as inner:  # nested: the same memo
            assert inner is memo
            model.encode(TEXTS)
        assert model._memo is memo
    assert model._memo is None
    seen.clear()
    model.encode(TEXTS[:2])
    assert sum(seen) == 2  # closed: encode embeds again


def test_token_outputs_are_not_memoised(model, monkeypatch):
    seen = _count_sequences(model, monkeypatch)
    with model.embedding_memo() as memo:
        first = model.encode(TEXTS[:3], output="token")
        second = model.encode(TEXTS[:3], output="token")
    assert sum(seen) == 6 and memo.embedded == 0
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_a_changed_max_seq_length_is_another_input(bert_dir):
    model = SentenceEncoder.load(bert_dir)
    long_text = " ".join(TEXTS * 3)
    with model.embedding_memo():
        full = model.encode([long_text])
        model.max_seq_length = 8
        short = model.encode([long_text])
    np.testing.assert_allclose(short, model.encode([long_text]), atol=1e-6)
    assert not np.allclose(full, short)


def test_a_changed_lower_casing_is_another_input(tmp_path):
    from helpers import build_checkpoint

    model = SentenceEncoder.load(build_checkpoint(tmp_path / "cased", "bert", lowercase=False))
    texts = ["The Quick Brown Fox", "THE QUICK BROWN FOX"]
    assert model.tokenizer.do_lower_case is False
    with model.embedding_memo():
        cased = model.encode(texts)
        model.tokenizer.do_lower_case = True
        lowered = model.encode(texts)
    np.testing.assert_allclose(lowered, model.encode(texts), atol=1e-6)
    np.testing.assert_allclose(lowered[0], lowered[1], atol=1e-6)  # the same text once lower-cased
    assert not np.allclose(cased[0], cased[1])


def test_a_changed_truncation_side_is_another_input(bert_dir):
    model = SentenceEncoder.load(bert_dir)
    model.max_seq_length = 6
    long_text = [" ".join(TEXTS * 3)]
    with model.embedding_memo():
        right = model.encode(long_text)
        model.tokenizer.hf.truncation_side = "left"
        left = model.encode(long_text)
    np.testing.assert_allclose(left, model.encode(long_text), atol=1e-6)
    assert not np.allclose(right, left)


def test_token_cache_gives_the_tokenizers_ids(model):
    from kosim.embedding_memo import TokenCache

    texts = TEXTS + TEXTS[:2] + ["안녕하세요"]
    for limit in (1 << 20, 0):  # 0: nothing kept, the same ids
        cache = TokenCache(limit)
        for prompt in ("", "질문: "):
            expected = model.tokenizer.encode_flat([prompt + t for t in texts])
            for _ in range(2):  # the second call reads the cache
                got = cache.encode_flat(model.tokenizer, prompt, texts)
                np.testing.assert_array_equal(got[0], expected[0])
                np.testing.assert_array_equal(got[1], expected[1])
        assert (cache.size == 0) == (limit == 0)


def test_token_cache_sees_a_changed_max_seq_length(bert_dir):
    from kosim.embedding_memo import TokenCache

    model, cache = SentenceEncoder.load(bert_dir), TokenCache()
    long_text = [" ".join(TEXTS * 3)]
    full = cache.encode_flat(model.tokenizer, "", long_text)[1]
    model.max_seq_length = 8
    assert cache.encode_flat(model.tokenizer, "", long_text)[1].tolist() == [8] != full.tolist()
    truncated_right = cache.encode_flat(model.tokenizer, "", long_text)[0]
    model.tokenizer.hf.truncation_side = "left"
    ids, _ = cache.encode_flat(model.tokenizer, "", long_text)
    np.testing.assert_array_equal(ids, model.tokenizer.encode_flat(long_text)[0])
    assert ids.tolist() != truncated_right.tolist()


def test_a_full_memo_still_answers_and_keeps_nothing_more(model):
    expected = model.encode(TEXTS)
    with model.embedding_memo() as memo:
        memo.limit = 3 * model.embedding_dim  # room for three embeddings
        np.testing.assert_allclose(model.encode(TEXTS[:3]), expected[:3], atol=1e-6)  # kept
        np.testing.assert_allclose(model.encode(TEXTS), expected, atol=1e-6)  # four more: returned, not kept
        np.testing.assert_allclose(
            model.encode(TEXTS[5:] + TEXTS[:1]), np.concatenate([expected[5:], expected[:1]]), atol=1e-6
        )
        assert len(memo) == 3 and memo.size == memo.limit
