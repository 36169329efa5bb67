"""kosim.st.losses: sentence-transformers' (model, ...) constructors; a loss's value equals sentence-transformers'
on the same texts (both models in eval mode, so without dropout)."""

from __future__ import annotations

import pytest
import torch
from helpers import KOREAN

st = pytest.importorskip("sentence_transformers")
from sentence_transformers import losses as st_losses  # noqa: E402
from sentence_transformers import util as st_util  # noqa: E402

from kosim.st import losses, util  # noqa: E402

ANCHORS = KOREAN[:6]
POSITIVES = [t[::-1] for t in ANCHORS]
NEGATIVES = KOREAN[2:8]
SCORES = torch.tensor([0.1, 0.9, 0.4, 0.7, 0.0, 1.0])
BINARY = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])

# name -> (columns, labels, kosim.st kwargs, sentence-transformers kwargs (None: the same))
CASES = {
    "MultipleNegativesRankingLoss": (3, None, {"scale": 10.0}, None),
    "MultipleNegativesSymmetricRankingLoss": (2, None, {}, None),
    "CosineSimilarityLoss": (2, SCORES, {}, None),
    "CoSENTLoss": (2, SCORES, {"scale": 15.0}, None),
    "AnglELoss": (2, SCORES, {}, None),
    "TripletLoss": (3, None, {"triplet_margin": 1.0}, None),
    "ContrastiveLoss": (2, BINARY, {"margin": 0.3}, None),
    "OnlineContrastiveLoss": (2, BINARY, {}, None),
    "MarginMSELoss": (3, SCORES, {}, None),
    "MultipleNegativesRankingLoss-dot": (
        2,
        None,
        {"similarity_fct": util.dot_score},
        {"similarity_fct": st_util.dot_score},
    ),
    "TripletLoss-cosine": (
        3,
        None,
        {"distance_metric": losses.TripletDistanceMetric.COSINE, "triplet_margin": 0.5},
        {"distance_metric": st_losses.TripletDistanceMetric.COSINE, "triplet_margin": 0.5},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_loss_values_match(models, case):
    theirs, ours = models
    name = case.split("-")[0]
    n_columns, labels, kwargs, st_kwargs = CASES[case]
    columns = [ANCHORS, POSITIVES, NEGATIVES][:n_columns]
    ours_loss = getattr(losses, name)(ours, **kwargs)
    theirs_loss = getattr(st_losses, name)(theirs, **(kwargs if st_kwargs is None else st_kwargs))
    theirs.eval()
    with torch.no_grad():
        expected = theirs_loss([theirs.tokenize(col) for col in columns], labels)
        got = ours_loss([ours.encode(col, convert_to_tensor=True) for col in columns], labels)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_softmax_loss_head_and_value(models):
    theirs, ours = models
    dim = ours.get_sentence_embedding_dimension()
    torch.manual_seed(0)
    ours_loss = losses.SoftmaxLoss(ours, dim, 3)
    torch.manual_seed(0)
    theirs_loss = st_losses.SoftmaxLoss(theirs, dim, 3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        expected = theirs_loss([theirs.tokenize(ANCHORS), theirs.tokenize(POSITIVES)], labels)
        got = ours_loss([ours.encode(c, convert_to_tensor=True) for c in (ANCHORS, POSITIVES)], labels.float())
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_model_first_and_unsupported_arguments(models):
    _, ours = models
    with pytest.raises(TypeError, match="takes the model"):
        losses.CosineSimilarityLoss(torch.nn.MSELoss())
    with pytest.raises(ValueError, match="similarity_fct"):
        losses.CoSENTLoss(ours, similarity_fct=lambda a, b: a @ b.T)
    with pytest.raises(ValueError, match="show_progress_bar"):
        losses.CachedMultipleNegativesRankingLoss(ours, show_progress_bar=True)


def test_trainer_options_and_guide(models):
    _, ours = models
    cached = losses.CachedMultipleNegativesRankingLoss(ours, mini_batch_size=4)
    assert losses.trainer_options(cached) == {"mini_batch_size": 4}
    wrapped = losses.MatryoshkaLoss(ours, cached, [32, 16])
    assert losses.trainer_options(wrapped) == {"mini_batch_size": 4}
    gathered = losses.MultipleNegativesRankingLoss(ours, gather_across_devices=True)
    assert losses.trainer_options(gathered) == {"gather_across_devices": True}
    assert losses.trainer_options(losses.MultipleNegativesRankingLoss(ours)) == {}
    gist = losses.GISTEmbedLoss(ours, ours)
    assert losses.guide_model(gist) is ours and losses.guide_model(losses.MatryoshkaLoss(ours, gist, [16])) is ours
    assert not any(True for _ in gist.parameters())  # the frozen guide is not a submodule
