"""SentenceEncoder.encode_query / encode_document against sentence-transformers' on the same model directory."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kosim.model import SentenceEncoder

st = pytest.importorskip("sentence_transformers")

TEXTS = ["안전모를 가진 한 남자가 춤을 추고 있다.", "아이", "The Quick Brown Fox", "사람들이 기차를 타고 있다."]


def _model_dir(bert_dir, tmp_path, prompts, default_prompt_name=None, include_prompt=False):
    """An ST directory (mean + cls pooling) whose config_sentence_transformers.json holds `prompts`."""
    from sentence_transformers import SentenceTransformer, models

    transformer = models.Transformer(str(bert_dir), max_seq_length=16)
    pooling = models.Pooling(32, pooling_mode=["mean", "cls"], include_prompt=include_prompt)
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(tmp_path / "m"))
    path = tmp_path / "m" / "config_sentence_transformers.json"
    cfg = json.loads(path.read_text())
    cfg.update(prompts=prompts, default_prompt_name=default_prompt_name)
    path.write_text(json.dumps(cfg))
    return tmp_path / "m"


def _diff(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


@pytest.mark.parametrize("include_prompt", [False, True])
def test_query_and_document_prompts_equal_sentence_transformers(bert_dir, tmp_path, include_prompt):
    path = _model_dir(bert_dir, tmp_path, {"query": "질문: ", "document": "문서: "}, include_prompt=include_prompt)
    ours, ref = SentenceEncoder.load(path), st.SentenceTransformer(str(path), device="cpu")
    assert _diff(ours.encode_query(TEXTS), ref.encode_query(TEXTS)) <= 1e-5
    assert _diff(ours.encode_document(TEXTS), ref.encode_document(TEXTS)) <= 1e-5
    assert _diff(ours.encode_query(TEXTS), ours.encode(TEXTS, prompt="질문: ")) == 0.0
    assert _diff(ours.encode_query(TEXTS), ours.encode(TEXTS)) > 1e-3  # the prompt is really used
    # an explicit prompt or prompt_name wins, as in sentence-transformers
    for kwargs in ({"prompt": "검색: "}, {"prompt_name": "document"}):
        assert _diff(ours.encode_query(TEXTS, **kwargs), ref.encode_query(TEXTS, **kwargs)) <= 1e-5
    assert ours.encode_query(TEXTS[0]).shape == (32 * 2,)  # a str gives one vector, like encode


def test_document_falls_back_to_passage_then_corpus(bert_dir, tmp_path):
    path = _model_dir(bert_dir, tmp_path, {"query": "q: ", "passage": "p: ", "corpus": "c: "})
    ours, ref = SentenceEncoder.load(path), st.SentenceTransformer(str(path), device="cpu")
    # sentence-transformers' documented order: "document", then "passage", then "corpus"
    assert _diff(ours.encode_document(TEXTS), ref.encode(TEXTS, prompt_name="passage")) <= 1e-5
    ours.prompts.pop("passage")
    assert _diff(ours.encode_document(TEXTS), ours.encode(TEXTS, prompt="c: ")) == 0.0


def test_no_role_prompt_means_no_prompt_even_with_a_default(bert_dir, tmp_path):
    path = _model_dir(bert_dir, tmp_path, {"other": "기타: "}, default_prompt_name="other")
    ours, ref = SentenceEncoder.load(path), st.SentenceTransformer(str(path), device="cpu")
    plain = ours.encode(TEXTS, prompt="")
    assert _diff(ours.encode(TEXTS), plain) > 1e-3  # encode uses the default prompt
    assert _diff(ours.encode_query(TEXTS), plain) == 0.0
    assert _diff(ours.encode_document(TEXTS), plain) == 0.0
    assert _diff(ours.encode_query(TEXTS), ref.encode_query(TEXTS)) <= 1e-5
    assert _diff(ours.encode_document(TEXTS), ref.encode_document(TEXTS)) <= 1e-5
