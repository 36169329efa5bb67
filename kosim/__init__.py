"""kosim: Korean sentence embeddings in plain PyTorch, compatible with sentence-transformers' model format.

The main names import from the top level (`from kosim import SentenceEncoder, Trainer, TrainingArguments`), each
on first use (PEP 562), so that `import kosim.config` and the CLI's argument parsing never load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it (imported when the name is first read)
_EXPORTS = {
    "SentenceEncoder": "kosim.model",
    "EncodePool": "kosim.encode_pool",
    "RankShards": "kosim.encode_pool",
    "Trainer": "kosim.training.trainer",
    "TrainingError": "kosim.training.trainer",
    "TrainingArguments": "kosim.config.arguments",
    # data
    "ColumnDataset": "kosim.data.datasets",
    "read_table": "kosim.data.readers",
    "read_korsts": "kosim.data.readers",
    "read_kornli_pairs": "kosim.data.readers",
    "read_kornli_triplets": "kosim.data.readers",
    "korsts_path": "kosim.data.resources",
    "kornli_path": "kosim.data.resources",
    # losses (all of them: kosim.losses)
    "MultipleNegativesRankingLoss": "kosim.losses.mnrl",
    "CoSENTLoss": "kosim.losses.cosent",
    "MatryoshkaLoss": "kosim.losses.matryoshka",
    # evaluators
    "EmbeddingSimilarityEvaluator": "kosim.evaluation.similarity",
    "TripletEvaluator": "kosim.evaluation.triplet",
    "InformationRetrievalEvaluator": "kosim.evaluation.information_retrieval",
    "BinaryClassificationEvaluator": "kosim.evaluation.binary",
    "ParaphraseMiningEvaluator": "kosim.evaluation.paraphrase",
    "SequentialEvaluator": "kosim.evaluation.sequential",
    # embeddings in use
    "semantic_search": "kosim.search",
    "cos_sim": "kosim.similarity",
    "dot_score": "kosim.similarity",
    "quantize_embeddings": "kosim.quantization",
    "mine_hard_negatives": "kosim.mining",
}
_SUBMODULES = ("data", "evaluation", "losses", "mining", "training")

__all__ = ["__version__", *_EXPORTS, *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"kosim.{name}")
    else:
        raise AttributeError(f"module 'kosim' has no attribute {name!r}")
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
