"""kosim.nn: the Transformer encoder (BERT, RoBERTa, XLM-R), its packed input format, and checkpoint I/O."""

from __future__ import annotations

from kosim.nn.config import EncoderConfig, is_native
from kosim.nn.encoder import TransformerEncoder, flops_per_token
from kosim.nn.hf import HFEncoder
from kosim.nn.loading import CheckpointError, load_encoder, resolve_model_dir, to_hf_state_dict
from kosim.nn.packing import PackedBatch, pack, pack_flat, pack_padded

__all__ = [
    "CheckpointError",
    "EncoderConfig",
    "HFEncoder",
    "PackedBatch",
    "TransformerEncoder",
    "flops_per_token",
    "is_native",
    "load_encoder",
    "pack",
    "pack_flat",
    "pack_padded",
    "resolve_model_dir",
    "to_hf_state_dict",
]
