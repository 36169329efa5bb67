"""The module stack of a SentenceEncoder, printed in sentence-transformers' style for its model card."""

from __future__ import annotations

from typing import Any

from torch import nn

from kosim.nn.config import NATIVE_MODEL_TYPES


def encoder_class_name(encoder: nn.Module) -> str:
    """The transformers class the encoder corresponds to: ``BertModel`` for kosim's own BERT, else the wrapped one."""
    wrapped = getattr(encoder, "model", None)  # HFEncoder wraps a transformers AutoModel
    if isinstance(wrapped, nn.Module):
        return type(wrapped).__name__
    return NATIVE_MODEL_TYPES[encoder.config.model_type]


def architecture(model: Any) -> str:
    """``SentenceTransformer(\\n  (0): Transformer(...) ...\\n)``: the text a card shows as the model's architecture.

    Built from the model's public parts: ``encoder``, ``max_seq_length``, ``tokenizer.do_lower_case``,
    ``pooling.config()`` and the ``post`` modules (``Dense`` with its config, ``Normalize``).
    """
    transformer = {"max_seq_length": model.max_seq_length, "do_lower_case": model.tokenizer.do_lower_case}
    lines = [
        "SentenceTransformer(",
        f"  (0): Transformer({transformer}) with Transformer model: {encoder_class_name(model.encoder)} ",
        f"  (1): Pooling({model.pooling.config()})",
    ]
    for i, module in enumerate(model.post, start=2):
        kind = type(module).__name__
        lines.append(f"  ({i}): {kind}({module.config()})" if hasattr(module, "config") else f"  ({i}): {kind}()")
    lines.append(")")
    return "\n".join(lines)
