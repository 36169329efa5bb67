"""The embedding cache: reused when model, texts and prompt match; a killed run resumes without re-encoding."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import build_checkpoint
from mining_doubles import HashEncoder, embed_all

from kosim.data import ColumnDataset, kornli_path
from kosim.mining import mine_hard_negatives
from kosim.mining.cache import embed_texts, model_fingerprint

TEXTS = ColumnDataset.from_tsv(kornli_path(), columns=["sentence1", "sentence2"]).column("sentence2")[:200:3]


def pairs() -> dict[str, list[str]]:
    return {"anchor": TEXTS[::2][:30], "positive": TEXTS[1::2][:30]}


def test_killed_run_resumes_where_it_stopped(tmp_path):
    killed = HashEncoder(fail_after_calls=3)
    with pytest.raises(KeyboardInterrupt):
        embed_texts(killed, TEXTS, "", 8, "float32", "corpus", tmp_path, shard_size=10, progress=False)
    assert sum(len(c) for c in killed.calls) == 30
    (manifest,) = tmp_path.glob("corpus-*.json")
    assert json.loads(manifest.read_text())["rows_done"] == 30
    resumed = HashEncoder()
    got = embed_texts(resumed, TEXTS, "", 8, "float32", "corpus", tmp_path, shard_size=10, progress=False)
    assert [t for c in resumed.calls for t in c] == TEXTS[30:]  # only the rows the killed run had not written
    np.testing.assert_array_equal(got, embed_all(TEXTS))
    again = HashEncoder()
    np.testing.assert_array_equal(embed_texts(again, TEXTS, "", 8, "float32", "corpus", tmp_path), got)
    assert again.calls == []


def test_second_mining_run_encodes_nothing_and_mines_the_same(tmp_path):
    first, second = HashEncoder(), HashEncoder()
    want = mine_hard_negatives(pairs(), first, cache_dir=tmp_path, verbose=False, output_scores=True)
    got = mine_hard_negatives(pairs(), second, cache_dir=tmp_path, verbose=False, output_scores=True)
    assert first.calls and second.calls == []
    assert got == want


@pytest.mark.parametrize(
    "change",
    ["prompt", "texts", "model"],
)
def test_cache_is_not_reused_when_anything_changes(tmp_path, change, bert_dir):
    from kosim.model import SentenceEncoder

    model = SentenceEncoder.load(bert_dir)
    texts = TEXTS[:12]
    base = embed_texts(model, texts, "", 4, "float32", "corpus", tmp_path, progress=False)
    prompt, other_texts = ("질문: ", texts) if change == "prompt" else ("", texts)
    if change == "texts":
        other_texts = texts[:-1] + ["다른 문장입니다."]
    if change == "model":  # the same architecture and tokenizer, other weights
        model = SentenceEncoder.load(build_checkpoint(tmp_path / "other", "bert", seed=1))
    calls = []
    original = model.encode
    model.encode = lambda chunk, **kw: calls.append(chunk) or original(chunk, **kw)
    got = embed_texts(model, other_texts, prompt, 4, "float32", "corpus", tmp_path, progress=False)
    assert calls and sum(len(c) for c in calls) == len(other_texts)  # encoded again, not read from the cache
    assert not np.allclose(got, base)
    np.testing.assert_allclose(got, original(other_texts, normalize=True, prompt=prompt), atol=1e-6)


def test_a_corrupt_manifest_means_encoding_again(tmp_path):
    embed_texts(HashEncoder(), TEXTS, "", 8, "float32", "corpus", tmp_path, progress=False)
    (manifest,) = tmp_path.glob("corpus-*.json")
    manifest.write_text("{not json")
    model = HashEncoder()
    got = embed_texts(model, TEXTS, "", 8, "float32", "corpus", tmp_path, progress=False)
    assert sum(len(c) for c in model.calls) == len(TEXTS)
    np.testing.assert_array_equal(got, embed_all(TEXTS))


def test_fingerprint_tells_models_apart(bert_dir, roberta_dir):
    from kosim.model import SentenceEncoder

    bert, roberta = SentenceEncoder.load(bert_dir), SentenceEncoder.load(roberta_dir)
    assert model_fingerprint(bert) == model_fingerprint(SentenceEncoder.load(bert_dir))
    assert model_fingerprint(bert) != model_fingerprint(roberta)
    bert.max_seq_length = 16
    assert model_fingerprint(bert) != model_fingerprint(SentenceEncoder.load(bert_dir))
