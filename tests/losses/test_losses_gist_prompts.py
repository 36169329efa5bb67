"""GISTEmbedLoss under training prompts against sentence-transformers 6.2: value and encoder gradients.

sentence-transformers' data collator puts each column's prompt before its texts (``model.preprocess(texts,
prompt=...)``, which also records ``prompt_length`` for ``include_prompt=False`` pooling), and its GISTEmbedLoss
hands the guide either the student's own features (same vocabulary: the prompted token ids, with that
``prompt_length``) or the student's decoded tokens, re-tokenized (another vocabulary: the prompted text). kosim
tokenizes the prompted texts once and builds the guide's table under the same prompts, as the Trainer does
(:func:`kosim.training.loss_setup.bind_guides`), so both guides read the prompted texts.

One case differs on purpose and is not tested: a guide whose own pooling has ``include_prompt=False`` and whose
vocabulary differs from the student's. sentence-transformers' re-tokenized guide features carry no
``prompt_length``, so that guide pools the prompt tokens anyway; kosim's guide table honours the guide's setting.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from test_losses_gist import EN_ROWS, KO_ROWS, _assert_same, _hf_grads, _texts

from kosim.data.collate import collate
from kosim.data.datasets import ColumnDataset
from kosim.losses.gist import GISTEmbedLoss
from kosim.model import SentenceEncoder
from kosim.training.loss_setup import bind_guides

st = pytest.importorskip("sentence_transformers")
from sentence_transformers.sentence_transformer import losses as st_losses  # noqa: E402

KO_PROMPTS = {"c0": "아이가 밖에 ", "c1": "비행기가 "}  # words the tiny tokenizer knows (no [UNK] prompts)
EN_PROMPTS = {"c0": "query: ", "c1": "passage: ", "c2": "passage: "}  # decode to the same words
CONFIG = {"margin_strategy": "relative", "margin": 0.001}


@pytest.fixture(scope="module")
def guide_dir(tmp_path_factory, bert_dir):
    """A tiny BERT with other weights and the student's tokenizer (sentence-transformers then does not
    re-tokenize: the guide reads the student's prompted token ids)."""
    from helpers import build_checkpoint

    out = build_checkpoint(tmp_path_factory.mktemp("guide"), "bert", seed=1)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (bert_dir / name).is_file():
            shutil.copy(bert_dir / name, out / name)
    return out


def _pair(path, include_prompt: bool):
    """The same checkpoint in sentence-transformers and in kosim, float64, eval mode, with that pooling."""
    st_model = st.SentenceTransformer(str(path), device="cpu").eval().double()
    st_model[1].include_prompt = include_prompt
    model = SentenceEncoder.load(path).eval().double()
    model.pooling.include_prompt = include_prompt
    return st_model, model


def _st_loss(student, guide, columns, prompts):
    """sentence-transformers: the collator's prompted features per column, then its GISTEmbedLoss."""
    loss_fn = st_losses.GISTEmbedLoss(student, guide, **CONFIG)
    features = [student.preprocess(texts, prompt=prompts.get(f"c{c}")) for c, texts in enumerate(columns)]
    student.zero_grad()
    loss = loss_fn(features, None)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in student[0].auto_model.named_parameters() if p.grad is not None}
    return (loss.detach(), grads), loss_fn.must_retokenize


def _bound(loss, dataset, guide, student, prompts):
    """`loss` with its guide table built by the Trainer's own `bind_guides` (the training prompts applied)."""
    (bound,) = bind_guides(
        [loss],
        ["train"],
        {"train": dataset},
        {"train": guide},
        torch.device("cpu"),
        max_seq_length=student.max_seq_length,
        batch_size=8,
        progress=False,
        prompts={"train": prompts},
    )
    return bound


def _kosim_loss(student, guide, columns, prompts):
    """kosim: the texts tokenized once under their prompts, the guide table bound as the Trainer binds it."""
    dataset = ColumnDataset({f"c{i}": texts for i, texts in enumerate(columns)}, name="train")
    tokenized = dataset.tokenize(student.tokenizer, prompts=prompts, prompt_length_fn=student.tokenizer.prompt_length)
    batch = collate(tokenized, np.arange(len(dataset)))
    loss_fn = _bound(GISTEmbedLoss(**CONFIG), dataset, guide, student, prompts)
    loss_fn.table = type(loss_fn.table)([t.double() for t in loss_fn.table.tables], loss_fn.table.columns)
    student.zero_grad()
    embeddings = list(student(batch.packed).split(batch.num_rows))
    loss = loss_fn(embeddings, batch.labels, text_ids=batch.text_ids)
    loss.backward()
    return loss.detach(), _hf_grads(student)


def _check(student_dir, guide_dir, rows, prompts, retokenize, student_prompt=True, guide_prompt=True):
    (st_student, student), (st_guide, guide) = _pair(student_dir, student_prompt), _pair(guide_dir, guide_prompt)
    columns = _texts(rows, 3)
    reference, retokenized = _st_loss(st_student, st_guide, columns, prompts)
    assert retokenized is retokenize
    ours = _kosim_loss(student, guide, columns, prompts)
    _assert_same(ours, reference, 1e-6)
    unprompted = _kosim_loss(student, guide, columns, {})
    assert not torch.isclose(ours[0], unprompted[0], rtol=1e-4)  # the prompts change the loss here


@pytest.mark.parametrize(("student_prompt", "guide_prompt"), [(True, True), (False, True), (False, False)])
def test_same_vocabulary_guide_reads_the_prompted_ids(bert_dir, guide_dir, student_prompt, guide_prompt):
    # include_prompt=False leaves the prompt tokens out of that model's pooling (the guide: of its own pooling)
    _check(bert_dir, guide_dir, KO_ROWS, KO_PROMPTS, False, student_prompt, guide_prompt)


def test_other_vocabulary_guide_reads_the_prompted_text(minilm, bert_dir):
    # MiniLM student, tiny-BERT guide: sentence-transformers decodes the prompted student tokens and re-tokenizes
    _check(minilm, bert_dir, EN_ROWS, EN_PROMPTS, True)


def test_guide_prompts_differ_from_the_unprompted_guide(bert_dir, guide_dir):
    """The guide's filter itself sees the prompts: an unprompted guide table gives another loss."""
    (_, student), (_, guide) = _pair(bert_dir, True), _pair(guide_dir, True)
    columns = _texts(KO_ROWS, 3)
    dataset = ColumnDataset({f"c{i}": texts for i, texts in enumerate(columns)}, name="train")
    tokenized = dataset.tokenize(
        student.tokenizer, prompts=KO_PROMPTS, prompt_length_fn=student.tokenizer.prompt_length
    )
    batch = collate(tokenized, np.arange(len(dataset)))
    with torch.no_grad():
        embeddings = list(student(batch.packed).split(batch.num_rows))
    values = []
    for guide_prompts in (KO_PROMPTS, {}):
        loss_fn = _bound(GISTEmbedLoss(margin=0.0), dataset, guide, student, guide_prompts)
        values.append(loss_fn([e.float() for e in embeddings], None, text_ids=batch.text_ids).item())
    assert values[0] != pytest.approx(values[1], rel=1e-6)
