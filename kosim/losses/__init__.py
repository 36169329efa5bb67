"""Training losses: ``nn.Module`` functions of per-column embeddings (never of a model).

Every loss is called as ``loss(embeddings, labels=None, text_ids=None)`` with ``embeddings`` a list of
``[batch, dim]`` tensors (one per data column) and returns a scalar; ``config()`` gives its model-card parameters.
"""

from __future__ import annotations

from kosim.losses.cosent import CoSENTLoss
from kosim.losses.cosine import CosineSimilarityLoss
from kosim.losses.distill import MarginMSELoss, MSELoss
from kosim.losses.gist import GISTEmbedLoss, GuidedLoss, GuideTable, encode_guide_table
from kosim.losses.matryoshka import MatryoshkaLoss
from kosim.losses.mnrl import MultipleNegativesRankingLoss, false_negative_mask
from kosim.losses.registry import LOSSES, build_loss

__all__ = [
    "LOSSES",
    "CoSENTLoss",
    "CosineSimilarityLoss",
    "GISTEmbedLoss",
    "GuideTable",
    "GuidedLoss",
    "MSELoss",
    "MarginMSELoss",
    "MatryoshkaLoss",
    "MultipleNegativesRankingLoss",
    "build_loss",
    "encode_guide_table",
    "false_negative_mask",
]
