"""Fixtures for the sentence-transformers compatibility scripts: one tiny BERT loaded by both libraries."""

from __future__ import annotations

import pytest

st = pytest.importorskip("sentence_transformers")

PROMPTS = {"query": "질문: ", "document": "문서: "}


@pytest.fixture(scope="module")
def models(bert_dir):
    """(sentence-transformers' model, kosim.st's model) of the same directory, both on CPU with the same prompts."""
    from kosim.st import SentenceTransformer

    theirs = st.SentenceTransformer(str(bert_dir), device="cpu", prompts=PROMPTS)
    ours = SentenceTransformer(str(bert_dir), device="cpu", prompts=PROMPTS)
    return theirs, ours
