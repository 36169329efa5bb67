"""Property tests: arbitrary Unicode through tokenize/encode, and the no-duplicates sampler on random datasets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kosim.data import ColumnDataset, NoDuplicatesBatchSampler
from kosim.model import SentenceEncoder

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chars(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.characters(min_codepoint=lo, max_codepoint=hi)


HANGUL = chars(0xAC00, 0xD7A3)
JAMO = st.one_of(chars(0x1100, 0x11FF), chars(0x3130, 0x318F))
EMOJI = chars(0x1F300, 0x1FAFF)
EMOJI_SEQUENCES = st.lists(
    st.sampled_from(["👍🏽", "👨\u200d👩\u200d👧", "🇰🇷", "❤️", "가\u0301"]), min_size=1, max_size=6
).map("".join)
CONTROL = st.characters(categories=["Cc", "Cf"])
WHITESPACE = st.sampled_from([" ", "\t", "\n", "\r", "\u3000", "\u00a0", "\u2028", "\u200b"])
ANY = st.characters(exclude_categories=["Cs"])

SHORT = st.one_of(
    st.text(HANGUL, min_size=1, max_size=20),
    st.text(JAMO, min_size=1, max_size=20),
    st.text(EMOJI, min_size=1, max_size=8),
    EMOJI_SEQUENCES,
    st.text(CONTROL, min_size=1, max_size=8),
    st.text(WHITESPACE, min_size=0, max_size=8),  # whitespace-only, and the empty string
    st.text(st.one_of(HANGUL, JAMO, EMOJI, CONTROL, WHITESPACE, ANY), min_size=1, max_size=40),
)
LONG = st.builds(
    lambda s, k: (s + " ") * k, st.text(st.one_of(HANGUL, JAMO, EMOJI), min_size=1, max_size=6), st.integers(300, 1500)
)
TEXT = st.one_of(SHORT, SHORT, SHORT, LONG)
TEXTS = st.lists(TEXT, min_size=1, max_size=6)


@pytest.fixture(scope="module")
def model(bert_dir) -> SentenceEncoder:
    return SentenceEncoder.load(bert_dir)


@SETTINGS
@given(texts=TEXTS)
def test_tokenized_lengths_fit_max_seq_length(model, texts):
    ids = model.tokenize(texts)
    assert len(ids) == len(texts)
    assert all(2 <= len(seq) <= model.max_seq_length for seq in ids)
    assert all(0 <= t < model.tokenizer.vocab_size for seq in ids for t in seq)


@SETTINGS
@given(texts=TEXTS, batch_size=st.integers(1, 4), perm_seed=st.integers(0, 2**16))
def test_encode_shape_finite_and_order(model, texts, batch_size, perm_seed):
    out = model.encode(texts, batch_size=batch_size)
    assert isinstance(out, np.ndarray)
    assert out.shape == (len(texts), model.embedding_dim)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()

    # Row i is text i: each text alone gives the same row.
    alone = np.stack([model.encode(t) for t in texts])
    np.testing.assert_allclose(out, alone, atol=1e-5, rtol=0)

    # Encoding a permutation and permuting back gives the same rows.
    perm = np.random.default_rng(perm_seed).permutation(len(texts))
    shuffled = model.encode([texts[i] for i in perm], batch_size=batch_size)
    back = np.empty_like(shuffled)
    back[perm] = shuffled
    np.testing.assert_allclose(back, out, atol=1e-5, rtol=0)


POOL = ["가", "나", "다", "라", "마", "바", "사"]


@st.composite
def duplicate_heavy_dataset(draw):
    n_rows = draw(st.integers(1, 30))
    n_cols = draw(st.integers(1, 3))
    pool = POOL[: draw(st.integers(1, len(POOL)))]
    columns = {f"c{j}": draw(st.lists(st.sampled_from(pool), min_size=n_rows, max_size=n_rows)) for j in range(n_cols)}
    return ColumnDataset(columns)


@settings(max_examples=40, deadline=None)
@given(ds=duplicate_heavy_dataset(), batch_size=st.integers(1, 8), seed=st.integers(0, 1000), epoch=st.integers(0, 3))
def test_no_duplicates_sampler(ds, batch_size, seed, epoch):
    sampler = NoDuplicatesBatchSampler(ds, batch_size=batch_size, drop_last=False, seed=seed)
    sampler.set_epoch(epoch)
    batches = list(sampler)
    cols = [ds.column(name) for name in ds.column_names]
    for batch in batches:
        assert 1 <= len(batch) <= batch_size
        seen: set[str] = set()
        for row in batch:
            texts = {col[row] for col in cols}  # a row may repeat its own text across columns
            assert not texts & seen, f"batch {batch} repeats a text"
            seen |= texts
    rows = sorted(r for batch in batches for r in batch)
    assert rows == list(range(len(ds))), "every row exactly once per epoch with drop_last=False"
