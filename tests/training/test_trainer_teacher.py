"""The Trainer's teacher (MSELoss toward a frozen model's embeddings, through the guide-table mechanism) and
GISTEmbedLoss's guide table under training prompts."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import KOREAN, NO_DROPOUT, build_checkpoint, first_logged_loss, short_run_args

from kosim.data import ColumnDataset
from kosim.data.collate import collate
from kosim.losses import GISTEmbedLoss, MultipleNegativesRankingLoss
from kosim.losses.distill import MSELoss
from kosim.losses.guide import GuidedLoss, GuideTable
from kosim.model import SentenceEncoder
from kosim.nn.loading import to_hf_state_dict
from kosim.training import Trainer, TrainingArguments

KO = [t for t in KOREAN if not t.isascii()]
N = 6
# the anchor of row 0 is the positive of row 3: one text read under two prompts
TRAIN = ColumnDataset({"a": [KO[i] for i in range(N)], "b": [KO[(i + 3) % 7] + " " + KO[i % 7] for i in range(N)]})
TRAIN = ColumnDataset({"a": TRAIN.column("a"), "b": TRAIN.column("b")[:3] + [KO[0]] + TRAIN.column("b")[4:]})


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("student"), "bert", seed=0, **NO_DROPOUT)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> Path:
    """Another tiny BERT of the student's width (other weights)."""
    return build_checkpoint(tmp_path_factory.mktemp("teacher"), "bert", seed=3, **NO_DROPOUT)


@pytest.fixture(scope="module")
def narrow_dir(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("narrow"), "bert", seed=1, hidden_size=16, intermediate_size=32)


def _args(out, **settings) -> TrainingArguments:
    return short_run_args(out, N, **settings)


# ------------------------------------------------------------------------------------------------------- teacher
def test_teacher_step_one_loss_equals_mse_to_the_teachers_embeddings(student_dir, teacher_dir, tmp_path):
    teacher = SentenceEncoder.load(teacher_dir)
    Trainer(
        SentenceEncoder.load(student_dir), _args(tmp_path), TRAIN, MSELoss(), teacher=teacher, teacher_source="tiny-t"
    ).train()
    student = SentenceEncoder.load(student_dir)
    target = teacher.encode(TRAIN.column("a"), to="torch")  # the first column's texts: every column's target
    expected = np.mean([torch.mean((student.encode(TRAIN.column(c), to="torch") - target) ** 2).item() for c in "ab"])
    assert first_logged_loss(tmp_path) == pytest.approx(expected, rel=1e-4)
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "Teacher model of 'train' (MSELoss)" in card and "tiny-t" in card


def test_teacher_table_matches_sentence_transformers_mse(student_dir, teacher_dir):
    st = pytest.importorskip("sentence_transformers")
    from sentence_transformers.sentence_transformer import losses as st_losses

    student = SentenceEncoder.load(student_dir).eval().double()
    teacher = SentenceEncoder.load(teacher_dir)
    table = GuideTable.from_dataset(teacher, TRAIN, columns=["a"], unprompted=None)
    batch = collate(TRAIN.tokenize(student.tokenize), np.arange(N))
    loss = GuidedLoss(MSELoss(), table)(list(student(batch.packed).split(N)), None, batch.text_ids)
    loss.backward()
    holder = copy.deepcopy(student.encoder)
    with torch.no_grad():
        for target, param in zip(holder.parameters(), student.encoder.parameters()):
            target.copy_(param.grad)
    grads = to_hf_state_dict(holder)

    st_teacher = st.SentenceTransformer(str(teacher_dir), device="cpu").eval()
    labels = st_teacher.encode(TRAIN.column("a"), convert_to_tensor=True)  # ST's recipe: labels = teacher(source)
    torch.testing.assert_close(table.lookup([batch.text_ids[0]])[0], labels, rtol=1e-5, atol=1e-6)
    st_student = st.SentenceTransformer(str(student_dir), device="cpu").eval().double()
    features = [st_student.preprocess(TRAIN.column(c)) for c in "ab"]
    st_loss = st_losses.MSELoss(st_student)(features, table.embeddings[batch.text_ids[0]].double())
    st_loss.backward()
    torch.testing.assert_close(loss.detach(), st_loss.detach(), rtol=1e-6, atol=1e-6)
    st_grads = {n: p.grad for n, p in st_student[0].auto_model.named_parameters() if p.grad is not None}
    assert st_grads
    for name, st_grad in st_grads.items():
        torch.testing.assert_close(grads[name], st_grad, rtol=1e-6, atol=1e-6, msg=name)


def test_teacher_errors_are_early_and_named(student_dir, teacher_dir, narrow_dir, tmp_path):
    student = SentenceEncoder.load(student_dir)
    with pytest.raises(ValueError, match=r"'train': the teacher gives 16-d embeddings, but the student gives 32-d"):
        Trainer(student, _args(tmp_path), TRAIN, MSELoss(), teacher=SentenceEncoder.load(narrow_dir))
    with pytest.raises(ValueError, match=r"no training loss takes one \(only MSELoss does\)"):
        Trainer(student, _args(tmp_path), TRAIN, MultipleNegativesRankingLoss(), teacher=student)
    projected = MSELoss(projection_dim=16, embedding_dim=32)
    Trainer(student, _args(tmp_path), TRAIN, projected, teacher=SentenceEncoder.load(narrow_dir))  # widths fit
    labelled = ColumnDataset({"a": TRAIN.column("a")}, labels=np.zeros((N, 32)))
    trainer = Trainer(student, _args(tmp_path), labelled, MSELoss(), teacher=SentenceEncoder.load(teacher_dir))
    with pytest.raises(ValueError, match=r"'train' has labels and a teacher model"):
        trainer.train()


def test_mse_on_teacher_embedding_labels_trains(student_dir, teacher_dir, tmp_path):
    """The sentence-transformers way: the dataset's vector labels hold the teacher's embeddings."""
    teacher = SentenceEncoder.load(teacher_dir)
    labelled = ColumnDataset(dict(TRAIN._columns), labels=teacher.encode(TRAIN.column("a")))
    Trainer(SentenceEncoder.load(student_dir), _args(tmp_path / "labels"), labelled, MSELoss()).train()
    Trainer(SentenceEncoder.load(student_dir), _args(tmp_path / "teacher"), TRAIN, MSELoss(), teacher=teacher).train()
    assert first_logged_loss(tmp_path / "labels") == pytest.approx(first_logged_loss(tmp_path / "teacher"), rel=1e-6)


# ------------------------------------------------------------------------------------------- GIST under prompts
PROMPTS = {"a": "아이가 밖에 ", "b": "비행기가 "}  # words the tiny tokenizer knows (no [UNK] prompts)


def test_guide_table_encodes_each_column_under_its_prompt(teacher_dir):
    guide = SentenceEncoder.load(teacher_dir)
    guide.prompts, guide.default_prompt_name = {"x": "사람들이 "}, "x"  # the guide's own default never applies
    table = GuideTable.from_dataset(guide, TRAIN, prompts=PROMPTS)
    got = table.lookup([torch.from_numpy(ids) for ids in TRAIN.text_ids])
    for c, column in zip("ab", got):
        expected = guide.encode(TRAIN.column(c), prompt=PROMPTS[c], to="torch")
        torch.testing.assert_close(column, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(got[0][0], got[1][3])  # the same text, two prompts, two guide embeddings
    plain = GuideTable.from_dataset(guide, TRAIN)
    torch.testing.assert_close(plain.embeddings[0], guide.encode([KO[0]], prompt="", to="torch")[0])


def test_gist_step_one_loss_with_prompts_equals_the_loss_by_hand(student_dir, teacher_dir, tmp_path):
    guide = SentenceEncoder.load(teacher_dir)
    Trainer(
        SentenceEncoder.load(student_dir), _args(tmp_path, prompts=PROMPTS), TRAIN, GISTEmbedLoss(), guide=guide
    ).train()
    student = SentenceEncoder.load(student_dir)
    columns = [student.encode(TRAIN.column(c), prompt=PROMPTS[c], to="torch") for c in "ab"]
    guides = [guide.encode(TRAIN.column(c), prompt=PROMPTS[c], to="torch") for c in "ab"]
    expected = GISTEmbedLoss()(columns, guide_embeddings=guides).item()
    unprompted_guides = [guide.encode(TRAIN.column(c), prompt="", to="torch") for c in "ab"]
    other = GISTEmbedLoss()(columns, guide_embeddings=unprompted_guides).item()
    assert first_logged_loss(tmp_path) == pytest.approx(expected, rel=1e-4)
    assert abs(expected - other) > 1e-3 * abs(expected)  # the prompts change the guide's filter / the loss
