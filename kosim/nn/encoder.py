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

from kosim.nn.config import EncoderConfig
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


class AttentionGrid:
    """How attention sees a batch: the padded `[seqs, max_len]` grid plus the key mask.

    For a padded batch the grid is the input itself; for a packed batch tokens are scattered into it
    through `pad_index` and gathered back after attention.
    """

    def __init__(self, num_seqs: int, max_len: int, key_mask: Tensor, pad_index: Tensor | None):
        self.num_seqs = num_seqs
        self.max_len = max_len
        self.key_mask = key_mask  # [seqs, 1, 1, max_len] bool, True = attend
        self.pad_index = pad_index  # [tokens] or None when the input is already padded

    @classmethod
    def from_packed(cls, batch: PackedBatch) -> AttentionGrid:
        valid = torch.zeros(batch.num_seqs * batch.max_len, dtype=torch.bool, device=batch.input_ids.device)
        valid[batch.pad_index] = True
        key_mask = valid.view(batch.num_seqs, 1, 1, batch.max_len)
        return cls(batch.num_seqs, batch.max_len, key_mask, batch.pad_index)

    @classmethod
    def from_mask(cls, attention_mask: Tensor) -> AttentionGrid:
        seqs, max_len = attention_mask.shape
        return cls(seqs, max_len, attention_mask.bool().view(seqs, 1, 1, max_len), None)

    def scatter(self, x: Tensor) -> Tensor:
        """`[tokens, c]` (or already `[seqs, len, c]`) -> `[seqs, max_len, c]`."""
        if self.pad_index is None:
            return x
        grid = x.new_zeros(self.num_seqs * self.max_len, x.shape[-1])
        grid = grid.index_copy(0, self.pad_index, x)
        return grid.view(self.num_seqs, self.max_len, x.shape[-1])

    def gather(self, x: Tensor) -> Tensor:
        """`[seqs, max_len, c]` -> `[tokens, c]` (identity for a padded batch)."""
        if self.pad_index is None:
            return x
        return x.reshape(self.num_seqs * self.max_len, x.shape[-1]).index_select(0, self.pad_index)


class SelfAttention(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.head_dim = cfg.head_dim
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)  # fused query, key, value
        self.out = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout_p = cfg.attention_probs_dropout_prob

    def forward(self, x: Tensor, grid: AttentionGrid) -> Tensor:
        qkv = grid.scatter(self.qkv(x))  # [seqs, len, 3 * hidden]
        seqs, length, _ = qkv.shape
        qkv = qkv.view(seqs, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [seqs, heads, len, head_dim]
        o = F.scaled_dot_product_attention(
            q, k, v, attn_mask=grid.key_mask, dropout_p=self.dropout_p if self.training else 0.0
        )
        o = o.transpose(1, 2).reshape(seqs, length, self.num_heads * self.head_dim)  # [seqs, len, hidden]
        return self.out(grid.gather(o))


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
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, x: Tensor, grid: AttentionGrid) -> Tensor:
        x = self.attn_norm(x + self.dropout(self.attn(x, grid)))
        x = self.ff_norm(x + self.dropout(self.ff_out(self.act(self.ff_in(x)))))
        return x


class TransformerEncoder(nn.Module):
    """BERT-style encoder: token + position + token-type embeddings, LayerNorm, then `num_hidden_layers` blocks."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id)
        self.pos_emb = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.type_emb = nn.Embedding(max(cfg.type_vocab_size, 1), cfg.hidden_size)
        self.emb_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.emb_dropout = nn.Dropout(cfg.hidden_dropout_prob)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_hidden_layers))
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
        x = self.tok_emb(input_ids) + self.pos_emb(positions + self.config.position_offset)
        x = x + (self.type_emb.weight[0] if token_type_ids is None else self.type_emb(token_type_ids))
        return self.emb_dropout(self.emb_norm(x))

    def forward(self, batch: PackedBatch) -> Tensor:
        """Token states of a packed batch: `[tokens, hidden]`."""
        if batch.max_len > self.max_sequence_length:
            raise ValueError(
                f"a sequence of {batch.max_len} tokens exceeds the position table ({self.max_sequence_length})"
            )
        grid = AttentionGrid.from_packed(batch)
        x = self._embed(batch.input_ids, batch.positions, None)  # [tokens, hidden]
        for layer in self.layers:
            x = layer(x, grid)
        return x

    def forward_padded(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """Token states of a right-padded batch `[batch, seq]`: `[batch, seq, hidden]` (the reference path)."""
        seq = input_ids.shape[1]
        positions = torch.arange(seq, device=input_ids.device).expand_as(input_ids)
        grid = AttentionGrid.from_mask(attention_mask)
        x = self._embed(input_ids, positions, token_type_ids)  # [batch, seq, hidden]
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


__all__ = ["TransformerEncoder", "AttentionGrid", "activation", "flops_per_token"]
