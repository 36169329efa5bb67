"""EncoderConfig: the handful of numbers that define a BERT/RoBERTa encoder, read from a Hugging Face config."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Architectures that kosim's own encoder implements; everything else goes through transformers.AutoModel.
NATIVE_MODEL_TYPES = {"bert": "BertModel", "roberta": "RobertaModel", "xlm-roberta": "XLMRobertaModel"}

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish", "quick_gelu")


@dataclass(frozen=True)
class EncoderConfig:
    """Shape and behaviour of a BERT-style encoder.

    `position_offset` is where position ids start: 0 for BERT, `pad_token_id + 1` for RoBERTa/XLM-R
    (their position table reserves the first rows for padding).
    """

    model_type: str = "bert"
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        if self.model_type not in NATIVE_MODEL_TYPES:
            raise ValueError(
                f"model_type {self.model_type!r} is not a native kosim encoder ({sorted(NATIVE_MODEL_TYPES)})"
            )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads ({self.num_attention_heads})"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported; expected one of {ACTIVATIONS}")
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size", "max_position_embeddings"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def position_offset(self) -> int:
        return 0 if self.model_type == "bert" else self.pad_token_id + 1

    @property
    def max_sequence_length(self) -> int:
        """Longest sequence the position table can hold."""
        return self.max_position_embeddings - self.position_offset

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> EncoderConfig:
        """Build from a Hugging Face `config.json` dict (unknown keys are ignored, missing ones take BERT defaults)."""
        fields = {k: hf[k] for k in cls.__dataclass_fields__ if k in hf and hf[k] is not None}
        return cls(**fields)

    def to_hf(self) -> dict[str, Any]:
        """A `config.json` dict that transformers' AutoModel (and so sentence-transformers) reads back."""
        out = asdict(self)
        out["architectures"] = [NATIVE_MODEL_TYPES[self.model_type]]
        out["position_embedding_type"] = "absolute"
        out["initializer_range"] = 0.02
        if self.model_type != "bert":
            out.setdefault("bos_token_id", 0)
            out.setdefault("eos_token_id", 2)
        return out


def is_native(hf: dict[str, Any]) -> bool:
    """Whether kosim's own encoder can run this Hugging Face config exactly."""
    return (
        hf.get("model_type") in NATIVE_MODEL_TYPES
        and hf.get("position_embedding_type", "absolute") == "absolute"
        and hf.get("hidden_act", "gelu") in ACTIVATIONS
        and not hf.get("is_decoder", False)
    )
