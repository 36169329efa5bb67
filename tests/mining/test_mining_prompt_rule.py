"""Mining's prompt rule equals sentence-transformers': the model's "query" / "document" prompts apply by default,
its default_prompt_name never does (ST's encode_query / encode_document keep placeholder "query" / "document"
entries, so the default prompt is not reached)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import KOREAN

from kosim.mining import mine_hard_negatives
from kosim.model import SentenceEncoder

st = pytest.importorskip("sentence_transformers")
datasets = pytest.importorskip("datasets")

KO = [t for t in KOREAN if not t.isascii()]
PAIRS = {"anchor": [KO[0], KO[1], KO[2], KO[3]], "positive": [KO[4], KO[5], KO[6], KO[0]]}
DEFAULT = {"x": "아이가 밖에 "}  # words the tiny tokenizer knows
OPTIONS = dict(corpus=KO, num_negatives=2, output_format="n-tuple", output_scores=True)


def _st_mine(model) -> dict:
    found = st.util.mine_hard_negatives(datasets.Dataset.from_dict(PAIRS), model, verbose=False, **OPTIONS)
    return {c: found[c] for c in found.column_names}


def _assert_same(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for key in want:
        if key == "scores":
            np.testing.assert_allclose(np.array(got[key]), np.array(want[key]), rtol=1e-5, atol=1e-6)
        else:
            assert got[key] == want[key], key


def test_the_default_prompt_name_does_not_apply_to_mining(bert_dir):
    model = SentenceEncoder.load(bert_dir)
    model.prompts, model.default_prompt_name = dict(DEFAULT), "x"
    st_model = st.SentenceTransformer(str(bert_dir), device="cpu", prompts=dict(DEFAULT), default_prompt_name="x")
    got = mine_hard_negatives(PAIRS, model, verbose=False, **OPTIONS)
    _assert_same(got, _st_mine(st_model))
    prompted = mine_hard_negatives(PAIRS, model, verbose=False, query_prompt=DEFAULT["x"], **OPTIONS)
    assert not np.allclose(np.array(prompted["scores"]), np.array(got["scores"]))  # the prompt would change them


def test_query_and_document_prompts_apply_as_in_sentence_transformers(bert_dir):
    prompts = {"query": "아이가 밖에 ", "document": "비행기가 ", "x": "사람들이 "}
    model = SentenceEncoder.load(bert_dir)
    model.prompts, model.default_prompt_name = dict(prompts), "x"
    st_model = st.SentenceTransformer(str(bert_dir), device="cpu", prompts=dict(prompts), default_prompt_name="x")
    _assert_same(mine_hard_negatives(PAIRS, model, verbose=False, **OPTIONS), _st_mine(st_model))
