"""Inference copy of the encoder's weights: frozen, in one compute dtype, prepacked for oneDNN on CPU.

`TransformerEncoder.infer` runs on an `InferenceWeights` instead of the module's float32 parameters: bf16 (or
float16) weights cast once rather than on every call under autocast, and on CPUs with native bf16 the linear
weights reordered once into oneDNN's blocked layout, the feed-forward activation fused as a oneDNN post-op.
The float32 parameters stay the source of truth; `weights_key` tells when a copy is stale.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kosim.nn.attention import AttentionGrid

if TYPE_CHECKING:
    from kosim.nn.encoder import TransformerEncoder


# oneDNN post-ops for the feed-forward activation: (attr, algorithm) of `torch.ops.mkldnn._linear_pointwise`.
_FUSED_ACTIVATIONS = {
    "gelu": ("gelu", "none"),
    "gelu_new": ("gelu", "tanh"),
    "gelu_pytorch_tanh": ("gelu", "tanh"),
    "relu": ("relu", ""),
}


@functools.cache
def _onednn_bf16_linear_supported() -> bool:
    """Whether this CPU and torch build run oneDNN's prepacked bf16 linear.

    The ops exist in every build but refuse to run on CPUs without native bf16 support (no AVX-512 BW/VL/DQ and
    no AVX-NE-CONVERT, e.g. AMD Zen 3), so availability is probed once with a tiny layer rather than assumed.
    """
    if not (
        torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
    ):
        return False
    try:
        weight = torch.ops.mkldnn._reorder_linear_weight(torch.ones(4, 8, dtype=torch.bfloat16))
        out = torch.ops.mkldnn._linear_pointwise(torch.ones(2, 8, dtype=torch.bfloat16), weight, None, "none", [], "")
    except RuntimeError:
        return False
    return bool(torch.all(out.float() == 8.0))


# oneDNN keeps one compiled primitive (~0.5-1 MB) per distinct GEMM shape in a process-wide cache of 1,024
# entries. Packed batches have a different token count each, so unbounded row counts would grow the process by
# that much per batch until the cache is full. Prepacked GEMMs therefore run on row blocks of at most
# _GEMM_BLOCK rows, the last one padded to a multiple of _GEMM_ALIGN: 17 shapes per weight, whatever the input.
_GEMM_BLOCK = 2048
_GEMM_ALIGN = 128


def _onednn_linear(x: Tensor, weight: Tensor, bias: Tensor | None, attr: str, algorithm: str) -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, attr, [], algorithm)


def _gemm_row_blocks(rows: int) -> list[tuple[int, int, int]]:
    """(start, rows, padded rows) of each GEMM block covering `rows` rows; padded sizes take 17 values at most."""
    blocks = [(s, _GEMM_BLOCK, _GEMM_BLOCK) for s in range(0, rows - rows % _GEMM_BLOCK, _GEMM_BLOCK)]
    rest = rows % _GEMM_BLOCK
    if rest:
        blocks.append((rows - rest, rest, -(-rest // _GEMM_ALIGN) * _GEMM_ALIGN))
    return blocks


class _InferenceLinear:
    """A frozen linear layer in the inference dtype, its weight prepacked for oneDNN on CPU when possible."""

    def __init__(self, linear: nn.Linear, dtype: torch.dtype, prepack: bool):
        weight = linear.weight.detach().to(dtype)
        self.bias = None if linear.bias is None else linear.bias.detach().to(dtype)
        self.prepacked = prepack
        self.out_features = linear.out_features
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight) if prepack else weight

    def __call__(self, x: Tensor, activation: tuple[str, str] | None = None) -> Tensor:
        if self.prepacked:
            attr, algorithm = activation or ("none", "")
            parts = []
            for start, rows, padded in _gemm_row_blocks(x.shape[0]):
                block = x[start : start + rows]  # [rows, in]
                if padded != rows:
                    block = F.pad(block, (0, 0, 0, padded - rows))  # [padded, in], zero rows
                parts.append(_onednn_linear(block, self.weight, self.bias, attr, algorithm)[:rows])
            if not parts:
                return x.new_empty((0, self.out_features))
            return parts[0] if len(parts) == 1 else torch.cat(parts)
        y = F.linear(x, self.weight, self.bias)
        if activation is not None:
            y = F.gelu(y, approximate=activation[1]) if activation[0] == "gelu" else F.relu(y)
        return y


class InferenceWeights:
    """A no-grad copy of a `TransformerEncoder`'s weights in one compute dtype, for `TransformerEncoder.infer`.

    On CPU the linear weights are prepacked into oneDNN's blocked layout once (instead of being reordered, and
    under autocast re-cast, on every call) and the feed-forward activation runs as a oneDNN post-op. bf16
    weights are kept here so the float32 parameters stay the source of truth; `key` records which parameter
    versions this copy was made from.
    """

    def __init__(self, encoder: TransformerEncoder, dtype: torch.dtype):
        device = encoder.tok_emb.weight.device
        self.dtype = dtype
        self.key = weights_key(encoder, dtype)
        # oneDNN prepacking pays off for bf16 (AMX); float32 matmuls run at peak already (and would double memory)
        prepack = device.type == "cpu" and dtype == torch.bfloat16 and _onednn_bf16_linear_supported()
        self.activation = _FUSED_ACTIVATIONS.get(encoder.config.hidden_act)  # None: the block's own, unfused
        self.layers = []
        for block in encoder.layers:
            self.layers.append(
                (
                    _InferenceLinear(block.attn.qkv, dtype, prepack),
                    _InferenceLinear(block.attn.out, dtype, prepack),
                    _norm(block.attn_norm, dtype),
                    _InferenceLinear(block.ff_in, dtype, prepack),
                    _InferenceLinear(block.ff_out, dtype, prepack),
                    _norm(block.ff_norm, dtype),
                    block.act,
                )
            )
        self.num_heads = encoder.config.num_attention_heads

    def layer(self, i: int, x: Tensor, grid: AttentionGrid) -> Tensor:
        """Block `i` of the encoder in eval mode (no dropout): `[tokens, hidden] -> [tokens, hidden]`."""
        qkv, out, attn_norm, ff_in, ff_out, ff_norm, act = self.layers[i]
        x = attn_norm(x + out(grid.attention(qkv(x), self.num_heads)))  # [tokens, hidden]
        h = ff_in(x, self.activation) if self.activation is not None else act(ff_in(x))  # [tokens, intermediate]
        return ff_norm(x + ff_out(h))


def _norm(norm: nn.LayerNorm, dtype: torch.dtype):
    weight, bias = norm.weight.detach().to(dtype), norm.bias.detach().to(dtype)
    shape, eps = norm.normalized_shape, norm.eps
    return lambda x: F.layer_norm(x, shape, weight, bias, eps)


def weights_stamp(parameters: Iterable[Tensor]) -> tuple:
    """What changes when any weight changes: each parameter's device, storage and in-place version counter (bumped
    by every in-place update: optimizer steps, `load_state_dict`, `.to()`)."""
    return tuple((p.device, p.data_ptr(), p._version) for p in parameters)


def weights_key(encoder: nn.Module, dtype: torch.dtype) -> tuple:
    """Identity of the parameter versions (and dtype) an inference copy is made from; any in-place update changes it."""
    return (dtype,) + weights_stamp(encoder.parameters())


__all__ = ["InferenceWeights", "weights_key", "weights_stamp"]
