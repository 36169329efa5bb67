"""kosim's own BERT / RoBERTa / XLM-R encoder in plain PyTorch.

Two input layouts share every weight and every op except how attention sees the tokens:
  * packed (training and encode): hidden states are `[tokens, hidden]` with no padding at all;
  * padded (reference and parity with transformers): hidden states are `[batch, seq, hidden]`.
Weights are named after the modules here; `kosim.nn.loading` maps them to and from Hugging Face names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kosim.nn.attention import AttentionGrid
from kosim.nn.config import EncoderConfig
from kosim.nn.dropout import Dropout
from kosim.nn.inference import InferenceWeights, weights_key
from kosim.nn.int8 import Int8InferenceWeights
from kosim.nn.packing import PackedBatch


def activation(name: str):
    """The elementwise activation a Hugging Face `hidden_act` names."""
    if name == "gelu":
        return F.gelu
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    if name in ("silu", "swish"):
        return F.silu
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    raise ValueError(f"unsupported activation {name!r}")


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused query/key/value projection; `grid` says which tokens see which."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.head_dim = cfg.head_dim
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)  # fused query, key, value
        self.out = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout_p = cfg.attention_probs_dropout_prob

    def forward(self, x: Tensor, grid: AttentionGrid) -> Tensor:
        qkv = self.qkv(x)  # [tokens, 3 * hidden] (or [batch, seq, 3 * hidden] padded)
        o = grid.attention(qkv, self.num_heads, self.dropout_p if self.training else 0.0)  # [tokens, hidden]
        return self.out(o)


class Block(nn.Module):
    """One post-LayerNorm Transformer layer, as in BERT."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.attn = SelfAttention(cfg)
        self.attn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.ff_in = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.ff_out = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.ff_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.act = activation(cfg.hidden_act)
        self.dropout = Dropout(cfg.hidden_dropout_prob)

    def forward(self, x: Tensor, grid: AttentionGrid) -> Tensor:
        x = self.attn_norm(x + self.dropout(self.attn(x, grid)))  # [tokens, hidden]
        h = self.act(self.ff_in(x))  # [tokens, intermediate]
        return self.ff_norm(x + self.dropout(self.ff_out(h)))  # [tokens, hidden]


class TransformerEncoder(nn.Module):
    """BERT-style encoder: token + position + token-type embeddings, LayerNorm, then `num_hidden_layers` blocks."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id)
        self.pos_emb = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.type_emb = nn.Embedding(max(cfg.type_vocab_size, 1), cfg.hidden_size)
        self.emb_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.emb_dropout = Dropout(cfg.hidden_dropout_prob)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_hidden_layers))
        # Hugging Face weights the encoder does not use (the source checkpoint's pooler), kept to be saved back:
        # HF name -> float32 CPU tensor; not parameters, so neither trained nor in `state_dict()`
        self.unused_hf_weights: dict[str, Tensor] = {}
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """BERT's initialisation (normal(0, 0.02), zero biases), for models trained from scratch."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def max_sequence_length(self) -> int:
        return self.config.max_sequence_length

    def _embed(self, input_ids: Tensor, positions: Tensor, token_type_ids: Tensor | None) -> Tensor:
        """Normalised token + position + type embeddings, before dropout: `[..., hidden]`."""
        x = self.tok_emb(input_ids) + self.pos_emb(positions + self.config.position_offset)
        x = x + (self.type_emb.weight[0] if token_type_ids is None else self.type_emb(token_type_ids))
        return self.emb_norm(x)

    def forward(self, batch: PackedBatch) -> Tensor:
        """Token states of a packed batch: `[tokens, hidden]`."""
        if batch.max_len > self.max_sequence_length:
            raise ValueError(
                f"a sequence of {batch.max_len} tokens exceeds the position table ({self.max_sequence_length})"
            )
        grid = AttentionGrid.from_packed(batch)
        x = self.emb_dropout(self._embed(batch.input_ids, batch.positions, None))  # [tokens, hidden]
        for layer in self.layers:
            x = layer(x, grid)
        return x

    def inference_weights(self, dtype: torch.dtype = torch.float32) -> InferenceWeights | Int8InferenceWeights:
        """The inference copy of the weights in `dtype` (`torch.int8`: int8 GEMMs, float32 elsewhere; CPU only),
        rebuilt when a parameter changed since it was made."""
        cached = self.__dict__.get("_inference_weights")
        if cached is None or cached.key != weights_key(self, dtype):
            self.__dict__["_inference_weights"] = None  # free the old copy before building the new one
            cached = Int8InferenceWeights(self) if dtype == torch.int8 else InferenceWeights(self, dtype)
            self.__dict__["_inference_weights"] = cached
        return cached

    def clear_inference_weights(self) -> None:
        """Drop the inference copy of the weights (it is rebuilt on the next `infer`)."""
        self.__dict__["_inference_weights"] = None

    @torch.no_grad()
    def infer(self, batch: PackedBatch, weights: InferenceWeights | None = None) -> Tensor:
        """Token states of a packed batch without autograd, in the inference weights' dtype: `[tokens, hidden]`.

        Computes what `forward` computes in eval mode, whatever mode the module is in (no dropout, no module
        state read or changed, so threads may share it); float32 weights give the same numbers up to float
        rounding; with bf16 weights the matmuls, attention and LayerNorms run in bf16 (accumulating in
        float32 inside the kernels) and the embedding sum and its LayerNorm in float32.
        """
        weights = weights if weights is not None else self.inference_weights()
        if batch.max_len > self.max_sequence_length:
            raise ValueError(
                f"a sequence of {batch.max_len} tokens exceeds the position table ({self.max_sequence_length})"
            )
        grid = AttentionGrid.from_packed(batch)
        x = self._embed(batch.input_ids, batch.positions, None).to(weights.dtype)  # [tokens, hidden]
        for i in range(len(weights.layers)):
            x = weights.layer(i, x, grid)
        return x

    def forward_padded(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """Token states of a right-padded batch `[batch, seq]`: `[batch, seq, hidden]` (the reference path)."""
        seq = input_ids.shape[1]
        positions = torch.arange(seq, device=input_ids.device).expand_as(input_ids)
        grid = AttentionGrid.from_mask(attention_mask)
        x = self.emb_dropout(self._embed(input_ids, positions, token_type_ids))  # [batch, seq, hidden]
        for layer in self.layers:
            x = layer(x, grid)
        return x

    def num_non_embedding_parameters(self) -> int:
        """Parameters that do work per token in matmuls (the `6 N` in training FLOPs)."""
        return sum(p.numel() for name, p in self.named_parameters() if not name.endswith("_emb.weight"))


def flops_per_token(cfg: EncoderConfig, seq_len: float) -> float:
    """Forward FLOPs per token: 2 x matmul parameters plus attention scores and weighted sum."""
    h, i, n = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    matmul = 2 * n * (4 * h * h + 2 * h * i)
    attention = 2 * n * 2 * seq_len * h
    return float(matmul + attention)


__all__ = ["AttentionGrid", "InferenceWeights", "TransformerEncoder", "activation", "flops_per_token"]
