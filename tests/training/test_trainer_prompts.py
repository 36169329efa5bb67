"""Training-time prompts: applied once at tokenization, left out of include_prompt=False pooling exactly as
`encode(prompt=...)` does, and saved so the trained model's `encode_query` (kosim's and sentence-transformers')
uses them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kosim.data import ColumnDataset
from kosim.data.collate import collate
from kosim.losses import MultipleNegativesRankingLoss
from kosim.model import SentenceEncoder
from kosim.pooling import Pooling
from kosim.training import Trainer, TrainingArguments
from kosim.training.step import embed_columns, row_chunks

st = pytest.importorskip("sentence_transformers")

ANCHORS = ["안전모를 가진 한 남자가 춤을 추고 있다.", "어린아이가 말을 타고 있다.", "비행기가 이륙하고 있다.", "아이"]
POSITIVES = ["한 남자가 춤을 춘다.", "아이가 말을 탄다.", "비행기가 뜬다.", "어린아이가 밖에 있다."]
PROMPTS = {"anchor": "질문: ", "positive": "긴 문서 검색: "}


def _model(bert_dir, modes=("mean", "cls", "max", "weightedmean"), include_prompt=False) -> SentenceEncoder:
    model = SentenceEncoder.load(bert_dir)
    model.pooling = Pooling(32, list(modes), include_prompt=include_prompt)
    model.max_seq_length = 16
    return model


@pytest.mark.parametrize("include_prompt", [False, True])
def test_a_training_batch_embeds_as_encode_with_the_prompt(bert_dir, include_prompt):
    model = _model(bert_dir, include_prompt=include_prompt).eval()
    data = ColumnDataset({"anchor": ANCHORS, "positive": POSITIVES})
    tok = data.tokenize(model.tokenize, prompts=PROMPTS, prompt_length_fn=model.tokenizer.prompt_length)
    assert tok.prompt_lengths == [model.tokenizer.prompt_length(p) for p in PROMPTS.values()]
    assert tok.prompt_lengths[0] != tok.prompt_lengths[1]  # per-column lengths really differ in one batch
    # the prompt is in the ids, tokenized once with its text (truncated together, as encode does)
    assert tok.columns[0][1].tolist() == model.tokenize(["질문: " + ANCHORS[1]])[0]
    assert np.array_equal(tok.columns[0].text_ids, data.text_ids[0])  # text ids still name the text alone
    batch = collate(tok, np.array([2, 0, 3, 1]))
    with torch.no_grad():
        columns = embed_columns(model, batch)
        chunked = [torch.cat(c) for c in zip(*(embed_columns(model, ch) for ch in row_chunks(batch, 3)))]
    for c, (name, texts) in enumerate((("anchor", ANCHORS), ("positive", POSITIVES))):
        expected = model.encode([texts[i] for i in (2, 0, 3, 1)], prompt=PROMPTS[name], batch_size=3)
        assert np.abs(columns[c].numpy() - expected).max() <= 1e-5
        assert np.abs(chunked[c].numpy() - expected).max() <= 1e-5  # gradient caching's mini-batches too
        unprompted = model.encode([texts[i] for i in (2, 0, 3, 1)])
        assert np.abs(columns[c].numpy() - unprompted).max() > 1e-3


def test_training_with_prompts_saves_them_for_sentence_transformers(bert_dir, tmp_path):
    model = _model(bert_dir, modes=("mean",))
    data = ColumnDataset({"anchor": ANCHORS * 4, "positive": POSITIVES * 4})
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, max_steps=3, disable_tqdm=True,
        learning_rate=1e-3, prompts=PROMPTS, save_steps=100,
    )  # fmt: skip
    Trainer(model, args, data, MultipleNegativesRankingLoss()).train()
    saved = json.loads((tmp_path / "out" / "config_sentence_transformers.json").read_text())
    assert saved["prompts"] == {**PROMPTS, "query": "질문: ", "document": "긴 문서 검색: "}
    ours = SentenceEncoder.load(tmp_path / "out")
    ref = st.SentenceTransformer(str(tmp_path / "out"), device="cpu")
    assert ref.prompts["query"] == "질문: " and ref.prompts["document"] == "긴 문서 검색: "
    assert np.abs(ours.encode_query(ANCHORS) - ref.encode_query(ANCHORS)).max() <= 1e-5
    assert np.abs(ours.encode_document(POSITIVES) - ref.encode_document(POSITIVES)).max() <= 1e-5
    assert "질문: " in (tmp_path / "out" / "README.md").read_text()


def test_the_prompted_run_trains_on_the_prompted_texts(bert_dir, tmp_path):
    """Prompts change the trained weights; a prompt equal to the text's own start is the same as writing it."""

    def run(out, prompts, anchors):
        data = ColumnDataset({"anchor": anchors * 2, "positive": POSITIVES * 2})
        args = TrainingArguments(
            output_dir=str(tmp_path / out), per_device_train_batch_size=4, max_steps=2, disable_tqdm=True,
            learning_rate=1e-3, prompts=prompts, save_steps=100,
        )  # fmt: skip
        model = _model(bert_dir, modes=("mean",), include_prompt=True)
        Trainer(model, args, data, MultipleNegativesRankingLoss()).train()
        return model.encode(POSITIVES)

    prompted = run("a", {"anchor": "질문: "}, ANCHORS)
    written = run("b", None, ["질문: " + a for a in ANCHORS])
    plain = run("c", None, ANCHORS)
    assert np.abs(prompted - written).max() <= 1e-5
    assert np.abs(prompted - plain).max() > 1e-4


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ({"anchr": "q: "}, r"'anchr' is neither a dataset nor a column.*did you mean 'anchor'"),
        ({"nli": {"anchor": "q: "}}, r"'nli' is not a dataset of this run.*did you mean 'nlu'"),
        ({"nlu": {"postive": "q: "}}, r"nlu.postive: dataset 'nlu' has no column 'postive'.*did you mean 'positive'"),
    ],
)
def test_unknown_datasets_and_columns_are_named(bert_dir, tmp_path, prompts, message):
    data = {"nlu": ColumnDataset({"anchor": ANCHORS, "positive": POSITIVES})}
    args = TrainingArguments(output_dir=str(tmp_path), prompts=prompts, disable_tqdm=True)
    with pytest.raises(ValueError, match=message):
        Trainer(_model(bert_dir), args, data, MultipleNegativesRankingLoss())
