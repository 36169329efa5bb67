"""kosim.st: sentence-transformers' public API on kosim, so that switching is one edit of the import lines.

    from kosim.st import SentenceTransformer, util          # was: from sentence_transformers import ...
    from kosim.st.losses import MultipleNegativesRankingLoss

A thin translation layer: every name maps onto kosim's own API (SentenceEncoder, kosim.losses, kosim.evaluation,
kosim.search, kosim.mining); an argument kosim has no equivalent for raises an error naming it.
"""

from __future__ import annotations

from kosim.st import evaluation, losses, models, training_args, util
from kosim.st.data import to_column_datasets
from kosim.st.model import SentenceTransformer
from kosim.st.readers import InputExample
from kosim.st.similarity_functions import SimilarityFunction
from kosim.st.trainer import SentenceTransformerTrainer
from kosim.st.training_args import (
    BatchSamplers,
    MultiDatasetBatchSamplers,
    SentenceTransformerTrainingArguments,
)

__all__ = [
    "BatchSamplers",
    "InputExample",
    "MultiDatasetBatchSamplers",
    "SentenceTransformer",
    "SentenceTransformerTrainer",
    "SentenceTransformerTrainingArguments",
    "SimilarityFunction",
    "evaluation",
    "losses",
    "models",
    "to_column_datasets",
    "training_args",
    "util",
]
