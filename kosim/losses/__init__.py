"""Training losses: ``nn.Module`` functions of per-column embeddings (never of a model).

Every loss is called as ``loss(embeddings, labels=None, text_ids=None)`` with ``embeddings`` a list of
``[batch, dim]`` tensors (one per data column) and returns a scalar; ``config()`` gives its model-card parameters.
"""

from __future__ import annotations

from kosim.losses.angle import AnglELoss
from kosim.losses.batch_hard import (
    BatchAllTripletLoss,
    BatchHardSoftMarginTripletLoss,
    BatchHardTripletLoss,
    BatchSemiHardTripletLoss,
)
from kosim.losses.contrastive import ContrastiveLoss, OnlineContrastiveLoss
from kosim.losses.cosent import CoSENTLoss
from kosim.losses.cosine import CosineSimilarityLoss
from kosim.losses.distill import MarginMSELoss, MSELoss
from kosim.losses.gist import GISTEmbedLoss
from kosim.losses.gte import DirectionalRankingLoss
from kosim.losses.guide import GuidedLoss, GuideTable, bind_guide_table, encode_guide_table, needs_guide
from kosim.losses.matryoshka import MatryoshkaLoss
from kosim.losses.mnrl import MultipleNegativesRankingLoss, false_negative_mask
from kosim.losses.mnrl_symmetric import MultipleNegativesSymmetricRankingLoss
from kosim.losses.registry import LOSSES, build_loss, check_loss
from kosim.losses.softmax import SoftmaxLoss
from kosim.losses.triplet import TripletLoss

__all__ = [
    "LOSSES",
    "AnglELoss",
    "BatchAllTripletLoss",
    "BatchHardSoftMarginTripletLoss",
    "BatchHardTripletLoss",
    "BatchSemiHardTripletLoss",
    "ContrastiveLoss",
    "DirectionalRankingLoss",
    "MultipleNegativesSymmetricRankingLoss",
    "OnlineContrastiveLoss",
    "SoftmaxLoss",
    "TripletLoss",
    "CoSENTLoss",
    "CosineSimilarityLoss",
    "GISTEmbedLoss",
    "GuideTable",
    "GuidedLoss",
    "MSELoss",
    "MarginMSELoss",
    "MatryoshkaLoss",
    "MultipleNegativesRankingLoss",
    "bind_guide_table",
    "build_loss",
    "check_loss",
    "encode_guide_table",
    "false_negative_mask",
    "needs_guide",
]
