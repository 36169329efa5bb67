"""The new losses through a real encoder: the same tiny BERT loaded in sentence-transformers 6.2 and in kosim
(float64, eval mode), the loss and every encoder gradient (by Hugging Face parameter name) within 1e-6."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import KOREAN

from kosim.data.collate import collate
from kosim.data.datasets import ColumnDataset
from kosim.losses.angle import AnglELoss
from kosim.losses.batch_hard import (
    BatchAllTripletLoss,
    BatchHardSoftMarginTripletLoss,
    BatchHardTripletLoss,
    BatchSemiHardTripletLoss,
)
from kosim.losses.contrastive import ContrastiveLoss, OnlineContrastiveLoss
from kosim.losses.gte import DirectionalRankingLoss
from kosim.losses.mnrl_symmetric import MultipleNegativesSymmetricRankingLoss
from kosim.losses.softmax import SoftmaxLoss
from kosim.losses.triplet import TripletLoss
from kosim.model import SentenceEncoder
from kosim.nn.loading import to_hf_state_dict

st = pytest.importorskip("sentence_transformers")
from sentence_transformers.sentence_transformer import losses as st_losses  # noqa: E402

KO = [t for t in KOREAN if not t.isascii()]  # the tiny tokenizer is uncased: leave the English line out
ROWS = 6
TEXTS = [[KO[(r * 3 + c) % len(KO)] for r in range(ROWS)] for c in range(3)]
BINARY = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
CLASSES = [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]
SCORES = [0.9, 0.1, 0.5, 0.7, 0.3, 0.2]
ALL = ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")

# (id, kosim loss, sentence-transformers loss from a model, columns, labels)
CASES = [
    (
        "gte",
        lambda: DirectionalRankingLoss(directions=ALL),
        lambda m: st_losses.MultipleNegativesRankingLoss(m, directions=ALL),
        3,
        None,
    ),
    ("symmetric", MultipleNegativesSymmetricRankingLoss, st_losses.MultipleNegativesSymmetricRankingLoss, 2, None),
    ("triplet", TripletLoss, st_losses.TripletLoss, 3, None),
    ("contrastive", ContrastiveLoss, st_losses.ContrastiveLoss, 2, BINARY),
    (
        "online_contrastive",
        lambda: OnlineContrastiveLoss(margin=1.0),
        lambda m: st_losses.OnlineContrastiveLoss(m, margin=1.0),
        2,
        BINARY,
    ),
    ("angle", AnglELoss, st_losses.AnglELoss, 2, SCORES),
    ("angle_triplets", AnglELoss, st_losses.AnglELoss, 3, None),
    ("batch_hard", BatchHardTripletLoss, st_losses.BatchHardTripletLoss, 1, CLASSES),
    ("batch_semi_hard", BatchSemiHardTripletLoss, st_losses.BatchSemiHardTripletLoss, 1, CLASSES),
    ("batch_all", BatchAllTripletLoss, st_losses.BatchAllTripletLoss, 1, CLASSES),
    ("batch_hard_soft_margin", BatchHardSoftMarginTripletLoss, st_losses.BatchHardSoftMarginTripletLoss, 1, CLASSES),
]


@pytest.fixture(scope="module")
def models(bert_dir):
    st_model = st.SentenceTransformer(str(bert_dir), device="cpu").eval().double()
    return st_model, SentenceEncoder.load(bert_dir).eval().double()


def hf_grads(model: SentenceEncoder) -> dict[str, torch.Tensor]:
    holder = copy.deepcopy(model.encoder)
    with torch.no_grad():
        for target, param in zip(holder.parameters(), model.encoder.parameters()):
            target.copy_(param.grad if param.grad is not None else torch.zeros_like(param))
    return to_hf_state_dict(holder)


def st_run(st_model, loss, n_columns, labels, label_dtype=torch.float64):
    st_model.zero_grad()
    features = [st_model.preprocess(texts) for texts in TEXTS[:n_columns]]
    label_tensor = None if labels is None else torch.tensor(labels, dtype=label_dtype)
    value = loss(features, label_tensor)
    value.backward()
    grads = {n: p.grad.clone() for n, p in st_model[0].auto_model.named_parameters() if p.grad is not None}
    return value.detach(), grads


def kosim_run(model, loss, n_columns, labels):
    model.zero_grad()
    dataset = ColumnDataset({f"c{i}": TEXTS[i] for i in range(n_columns)}, labels=labels)
    batch = collate(dataset.tokenize(model.tokenize), np.arange(ROWS))
    embeddings = list(model(batch.packed).split(batch.num_rows))  # float64, like sentence-transformers here
    value = loss(embeddings, batch.labels, text_ids=batch.text_ids)
    value.backward()
    return value.detach(), hf_grads(model)


def assert_same(ours, theirs, tol=1e-6):
    (value, grads), (st_value, st_grads) = ours, theirs
    torch.testing.assert_close(value.double(), st_value.double(), rtol=tol, atol=tol)
    assert st_grads and set(st_grads) <= set(grads)
    for name, st_grad in st_grads.items():
        torch.testing.assert_close(grads[name].double(), st_grad.double(), rtol=tol, atol=tol, msg=name)


@pytest.mark.parametrize(("case", "ours", "theirs", "n_columns", "labels"), CASES, ids=[c[0] for c in CASES])
def test_loss_and_encoder_gradients_match(models, case, ours, theirs, n_columns, labels):
    st_model, model = models
    st_result = st_run(st_model, theirs(st_model), n_columns, labels)
    assert st_result[0].abs() > 0
    assert_same(kosim_run(model, ours(), n_columns, labels), st_result)


@pytest.mark.parametrize("flags", [(True, True, False), (False, True, True), (True, False, True)])
def test_softmax_loss_head_and_encoder_gradients_match(models, flags):
    st_model, model = models
    rep, diff, mult = flags
    kwargs = dict(
        num_labels=3,
        concatenation_sent_rep=rep,
        concatenation_sent_difference=diff,
        concatenation_sent_multiplication=mult,
    )
    dim = model.get_sentence_embedding_dimension()
    st_loss = st_losses.SoftmaxLoss(st_model, embedding_dimension=dim, **kwargs).double()
    ours = SoftmaxLoss(dim, **kwargs).double()
    ours.classifier.load_state_dict(st_loss.classifier.state_dict())
    st_loss.classifier.zero_grad()
    st_result = st_run(st_model, st_loss, 2, CLASSES, label_dtype=torch.long)
    assert_same(kosim_run(model, ours, 2, CLASSES), st_result)
    for name in ("weight", "bias"):
        torch.testing.assert_close(
            getattr(ours.classifier, name).grad, getattr(st_loss.classifier, name).grad, rtol=1e-6, atol=1e-6
        )
    assert ours.config() == st_loss.get_config_dict()


EN = [
    ["a man is playing a flute", "a child is riding a horse", "the plane is taking off", "a woman is cooking meat"],
    ["a man plays music", "a kid rides an animal", "an airplane leaves the ground", "someone is making dinner"],
    ["a woman is sleeping", "the child is indoors", "the plane has landed", "a man is eating"],
]


def test_minilm_matches_sentence_transformers(minilm):
    st_model = st.SentenceTransformer(str(minilm), device="cpu").eval().double()
    model = SentenceEncoder.load(minilm).eval().double()
    cases = [
        (
            DirectionalRankingLoss(directions=ALL),
            st_losses.MultipleNegativesRankingLoss(st_model, directions=ALL),
            3,
            None,
        ),
        (BatchAllTripletLoss(margin=0.5), st_losses.BatchAllTripletLoss(st_model, margin=0.5), 1, [0.0, 1.0, 0.0, 1.0]),
        (OnlineContrastiveLoss(), st_losses.OnlineContrastiveLoss(st_model), 2, [1.0, 0.0, 0.0, 1.0]),
    ]
    for ours, theirs, n_columns, labels in cases:
        st_model.zero_grad()
        features = [st_model.preprocess(texts) for texts in EN[:n_columns]]
        st_value = theirs(features, None if labels is None else torch.tensor(labels, dtype=torch.float64))
        st_value.backward()
        st_grads = {n: p.grad.clone() for n, p in st_model[0].auto_model.named_parameters() if p.grad is not None}
        model.zero_grad()
        dataset = ColumnDataset({f"c{i}": EN[i] for i in range(n_columns)}, labels=labels)
        batch = collate(dataset.tokenize(model.tokenize), np.arange(4))
        value = ours(list(model(batch.packed).split(batch.num_rows)), batch.labels)
        value.backward()
        assert_same((value.detach(), hf_grads(model)), (st_value.detach(), st_grads))


def test_training_step_on_group_by_label_batches(models):
    """The trainer's path: a tokenized (sentence, label) dataset, group-by-label batches, loss_backward (float32)."""
    from kosim.data.group_by_label import GroupByLabelBatchSampler
    from kosim.training.step import loss_backward

    _, model = models
    model = copy.deepcopy(model).float()
    texts = [KO[i % len(KO)] + f" {i}" for i in range(24)]
    tokenized = ColumnDataset({"text": texts}, labels=[float(i % 4) for i in range(24)]).tokenize(model.tokenize)
    sampler = GroupByLabelBatchSampler(tokenized, 8, seed=0)
    loss_fn = BatchHardTripletLoss(margin=1.0)
    for rows in sampler:
        model.zero_grad()
        batch = collate(tokenized, np.asarray(rows))
        labels = batch.labels
        assert min(int((labels == value).sum()) for value in labels.unique()) >= 2
        loss = loss_backward(model, loss_fn, batch)
        assert torch.isfinite(loss) and loss > 0
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
