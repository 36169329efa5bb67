"""MarginMSELoss and MSELoss against sentence-transformers 6.2: values and encoder gradients on the same weights."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import KOREAN, build_checkpoint

from kosim.data.collate import collate
from kosim.data.datasets import ColumnDataset
from kosim.losses.distill import MarginMSELoss, MSELoss
from kosim.model import SentenceEncoder
from kosim.nn.loading import to_hf_state_dict
from kosim.training.step import loss_backward

st = pytest.importorskip("sentence_transformers")
from sentence_transformers import util as st_util  # noqa: E402
from sentence_transformers.sentence_transformer import losses as st_losses  # noqa: E402

KO = [t for t in KOREAN if not t.isascii()]
ROWS = [tuple(KO[(i + c) % len(KO)] for c in range(5)) for i in range(5)]  # query, positive, 3 negatives
B = len(ROWS)
ST_PAIRWISE = {
    "dot": st_util.pairwise_dot_score,
    "cosine": st_util.pairwise_cos_sim,
    "euclidean": st_util.pairwise_euclidean_sim,
    "manhattan": st_util.pairwise_manhattan_sim,
}


@pytest.fixture(scope="module")
def models(bert_dir):
    """The same tiny BERT in sentence-transformers and in kosim, float64, eval mode (no dropout)."""
    return (
        st.SentenceTransformer(str(bert_dir), device="cpu").eval().double(),
        SentenceEncoder.load(bert_dir).eval().double(),
    )


def _columns(n):
    return [[row[c] for row in ROWS] for c in range(n)]


def _st_run(st_model, loss_fn, n_columns, labels):
    st_model.zero_grad()
    loss = loss_fn([st_model.preprocess(texts) for texts in _columns(n_columns)], labels)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in st_model[0].auto_model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def _kosim_run(model, loss_fn, n_columns, labels):
    columns = _columns(n_columns)
    dataset = ColumnDataset({f"c{i}": texts for i, texts in enumerate(columns)})
    batch = collate(dataset.tokenize(model.tokenize), np.arange(B))
    model.zero_grad()
    loss = loss_fn(list(model(batch.packed).split(B)), labels, text_ids=batch.text_ids)  # float64 forward
    loss.backward()
    holder = copy.deepcopy(model.encoder)
    with torch.no_grad():
        for target, param in zip(holder.parameters(), model.encoder.parameters()):
            target.copy_(param.grad if param.grad is not None else torch.zeros_like(param))
    return loss.detach(), to_hf_state_dict(holder)


def _assert_same(ours, theirs, tol=1e-6):
    (value, grads), (st_value, st_grads) = ours, theirs
    torch.testing.assert_close(value, st_value, rtol=tol, atol=tol)
    assert st_grads and set(st_grads) <= set(grads)
    for name, st_grad in st_grads.items():
        torch.testing.assert_close(grads[name], st_grad, rtol=tol, atol=tol, msg=name)


def _labels(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------------------------------------------------------------------------------------------------------------
# MarginMSELoss
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_negatives", "label_shape"),
    [(1, (B,)), (1, (B, 1)), (1, (B, 2)), (3, (B, 3)), (3, (B, 4))],
)
def test_margin_mse_matches_sentence_transformers(models, n_negatives, label_shape):
    st_model, model = models
    labels = _labels(*label_shape, seed=n_negatives) * 5
    expected = _st_run(st_model, st_losses.MarginMSELoss(st_model), 2 + n_negatives, labels)
    _assert_same(_kosim_run(model, MarginMSELoss(), 2 + n_negatives, labels), expected)


@pytest.mark.parametrize("similarity", ["cosine", "euclidean", "manhattan"])
def test_margin_mse_similarities_match_sentence_transformers(models, similarity):
    st_model, model = models
    labels = _labels(B, 2, seed=3)
    st_loss = st_losses.MarginMSELoss(st_model, similarity_fct=ST_PAIRWISE[similarity])
    expected = _st_run(st_model, st_loss, 4, labels)
    _assert_same(_kosim_run(model, MarginMSELoss(similarity=similarity), 4, labels), expected)


def test_margin_mse_scores_equal_margins():
    """Raw teacher scores [batch, n + 1] give the same loss as the margins computed from them."""
    generator = torch.Generator().manual_seed(5)
    columns = [torch.randn(B, 8, generator=generator) for _ in range(4)]
    scores = torch.randn(B, 3, generator=generator)
    loss = MarginMSELoss()
    torch.testing.assert_close(loss(columns, scores), loss(columns, scores[:, :1] - scores[:, 1:]), rtol=0, atol=0)
    q, p, negatives = columns[0], columns[1], columns[2:]
    margins = torch.stack([(q * p).sum(1) - (q * n).sum(1) for n in negatives], 1)
    torch.testing.assert_close(loss(columns, scores), ((margins - (scores[:, :1] - scores[:, 1:])) ** 2).mean())


def test_margin_mse_grad_cache_equals_plain(bert_dir):
    model = SentenceEncoder.load(bert_dir).eval()
    dataset = ColumnDataset({f"c{i}": texts for i, texts in enumerate(_columns(4))}, labels=None)
    batch = collate(dataset.tokenize(model.tokenize), np.arange(B))
    batch.labels = _labels(B, 3, seed=8).float()  # the pipeline's labels are 1-D today; the loss takes [batch, n]
    plain = loss_backward(model, MarginMSELoss(), batch)
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    cached = loss_backward(model, MarginMSELoss(), batch, mini_batch_size=2)
    torch.testing.assert_close(cached, plain, rtol=1e-5, atol=1e-6)
    for name, param in model.named_parameters():
        if name in expected:
            torch.testing.assert_close(param.grad, expected[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (None, "needs labels"),
        (torch.zeros(B, 5), r"needs labels of shape \[5, 2\].*or \[5, 3\].*got \(5, 5\)"),
        (torch.zeros(B), r"needs labels of shape \[5, 2\]"),
        (torch.tensor([[0.0, 1.0]] * (B - 1) + [[float("nan"), 0.0]]), r"label at index \(4, 0\) is not finite"),
    ],
)
def test_margin_mse_bad_labels(labels, match):
    columns = [torch.randn(B, 4) for _ in range(4)]
    with pytest.raises(ValueError, match=match):
        MarginMSELoss()(columns, labels)


def test_margin_mse_needs_a_negative_column():
    with pytest.raises(ValueError, match="at least 3 embedding columns"):
        MarginMSELoss()([torch.randn(B, 4)] * 2, torch.zeros(B))
    assert MarginMSELoss().config() == {"similarity_fct": "pairwise_dot_score"}


# ---------------------------------------------------------------------------------------------------------------
# MSELoss
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def teacher_embeddings(tmp_path_factory):
    """A second tiny BERT's embeddings of every column (float64): a real teacher of the same width."""
    teacher = SentenceEncoder.load(build_checkpoint(tmp_path_factory.mktemp("teacher"), "bert", seed=3))
    return torch.stack([torch.from_numpy(teacher.encode(texts)).double() for texts in _columns(3)], dim=1)


@pytest.mark.parametrize(("n_columns", "per_column"), [(1, False), (2, False), (3, False), (3, True)])
def test_mse_matches_sentence_transformers(models, teacher_embeddings, n_columns, per_column):
    st_model, model = models
    labels = teacher_embeddings[:, :n_columns] if per_column else teacher_embeddings[:, 0]
    expected = _st_run(st_model, st_losses.MSELoss(st_model), n_columns, labels)
    _assert_same(_kosim_run(model, MSELoss(), n_columns, labels), expected)


def test_mse_projection_matches_sentence_transformers(models):
    st_model, model = models
    torch.manual_seed(0)
    st_loss = st_losses.MSELoss(st_model, projection_dim=12).double()
    ours = MSELoss(projection_dim=12, embedding_dim=model.embedding_dim).double()
    ours.projection.load_state_dict(st_loss.projection.state_dict())
    labels = _labels(B, 2, 12, seed=4)
    st_loss.projection.zero_grad()
    expected = _st_run(st_model, st_loss, 2, labels)
    _assert_same(_kosim_run(model, ours, 2, labels), expected)
    for name, param in ours.projection.named_parameters():  # the projection trains the same way too
        st_param = dict(st_loss.projection.named_parameters())[name]
        torch.testing.assert_close(param.grad, st_param.grad, rtol=1e-6, atol=1e-6, msg=name)
    assert ours.config() == {"projection_dim": 12}


def test_mse_hand_formula():
    generator = torch.Generator().manual_seed(6)
    a, b, teacher = (torch.randn(B, 8, generator=generator) for _ in range(3))
    expected = (((a - teacher) ** 2).mean() + ((b - teacher) ** 2).mean()) / 2
    torch.testing.assert_close(MSELoss()([a, b], teacher), expected)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (None, "needs labels"),
        (torch.zeros(B, 3, 8), r"\[5, 8\] \(shared by all 2 column\(s\)\) or \[5, 2, 8\].*got \(5, 3, 8\)"),
        (torch.zeros(B, 6), r"teacher embeddings have shape \(5, 6\).*set projection_dim"),
        (torch.full((B, 8), float("inf")), r"label at index \(0, 0\) is not finite"),
    ],
)
def test_mse_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        MSELoss()([torch.randn(B, 8), torch.randn(B, 8)], labels)


def test_mse_bad_arguments():
    with pytest.raises(ValueError, match="needs embedding_dim as a positive int"):
        MSELoss(projection_dim=8)
    with pytest.raises(ValueError, match="set both or neither"):
        MSELoss(embedding_dim=8)
    with pytest.raises(ValueError, match="projection takes 4-dim embeddings, got 8"):
        MSELoss(projection_dim=2, embedding_dim=4)([torch.randn(B, 8)], torch.zeros(B, 2))
