"""int8 linear layers for CPU inference: weights quantized once per output channel, activations per row at run time.

`Int8Linear.from_float(linear)(x)` computes `linear(x)` for float32 `x [tokens, in]` as an int8 GEMM with int32
accumulation and returns float32 `[tokens, out]`:

* weight: symmetric int8, one scale per output channel (`s_w[j] = max_k |W[j, k]| / 127`), quantized and
  prepacked into oneDNN's blocked layout once;
* activations: asymmetric 8-bit, one scale and integer zero point per row (token) spanning that row's
  `[min, max]` with 252 steps, `x[i, k] ~ s_x[i] * (q_x[i, k] - 128) + c[i]` with `s_x[i] = (max_k x[i, k] -
  min_k x[i, k]) / 252` (at least 2^-21 of the row's largest magnitude) and `c[i] = s_x[i] * (128 -
  zero_point[i])`, so a token's result does not depend on the other tokens of the batch. Asymmetric rather than
  symmetric because the rows are lopsided (a token's largest entries are mostly of one sign): on MiniLM and
  KorSTS dev it lifted the worst cosine to the float32 embeddings from 0.983 to 0.993;
* `y[i, j] = s_x[i] * s_w[j] * sum_k (q_x[i, k] - 128) q_w[j, k] + c[i] * u[j] + b[j]`, where
  `u[j] = s_w[j] * sum_k q_w[j, k]` is computed once with the weight.

The GEMM is oneDNN's `torch.ops.onednn.qlinear_pointwise` with uint8 activations (the int8 values plus a zero
point of 128; that is oneDNN's VNNI kernel, while int8 activations fall to a reference kernel ~1000x slower), the
weight scales applied by oneDNN and the row scales and bias by one `addcmul`. The choice of kernel was measured by
`benchmarks/bench_int8_kernels.py` against fbgemm's dynamic quantized linear (per-tensor activations; built on
quantized tensors, deprecated in torch 2.13) and `torch._int_mm` (no faster than float32 on CPU). Where oneDNN's
int8 linear is unavailable the same integer arithmetic runs exactly in float32 (`_reference_int8_linear`).

`Int8InferenceWeights(encoder)` is the int8 counterpart of `kosim.nn.encoder.InferenceWeights`: a copy of a
`TransformerEncoder`'s linear layers in int8 (LayerNorms, attention and the rest in float32) for
`TransformerEncoder.infer`.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kosim.nn.attention import AttentionGrid
from kosim.nn.inference import _GEMM_BLOCK, _gemm_row_blocks
from kosim.nn.inference import weights_key as _weights_key

QMAX = 127  # weights: symmetric int8 range [-127, 127], the zero point stays 0 and -128 is never used
_ZERO_POINT = 128  # oneDNN's activation zero point: the GEMM sees q - 128 for a uint8 activation q
_LEVELS = 252  # steps spanned by a row's [min, max] (levels 0..254 at most, see quantize_rows)
_ROUNDING = 1.5 * 2**23  # adding it rounds a float32 in (-2^22, 2^22) to an integer, held in the low mantissa bits
_HALF_PLUS = torch.tensor(0.51)  # constants of quantize_rows (read only)

# oneDNN compiles one primitive per GEMM shape (a process-wide cache of 1,024 entries); packed batches have a
# different token count each, so GEMMs run on the bounded row blocks of kosim.nn.inference (17 shapes per weight).


@functools.cache
def onednn_int8_supported() -> bool:
    """Whether this torch build and CPU run oneDNN's int8 linear (probed once with a tiny exact GEMM)."""
    ops = getattr(torch.ops, "onednn", None)
    if ops is None or not torch.backends.mkldnn.is_available():
        return False
    try:
        weight = torch.ones(8, 16, dtype=torch.int8)
        packed = torch.ops.onednn.qlinear_prepack(weight, [4, 16])
        x = torch.full((4, 16), _ZERO_POINT + 2, dtype=torch.uint8)
        scale, zeros = torch.ones(8), torch.zeros(8, dtype=torch.int64)
        out = torch.ops.onednn.qlinear_pointwise(
            x, 1.0, _ZERO_POINT, packed, scale, zeros, None, 1.0, 0, torch.float32, "none", [], ""
        )
    except (RuntimeError, AttributeError, NotImplementedError):
        return False
    return bool(torch.all(out == 32.0))


def quantize_per_channel(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric int8 weight, one scale per output channel: `(q [out, in] int8, scale [out] float32)`."""
    scale = weight.detach().float().abs().amax(dim=1).clamp_min(1e-12) / QMAX
    q = torch.round(weight.detach().float() / scale[:, None]).clamp_(-QMAX, QMAX).to(torch.int8)
    return q, scale


def quantize_rows(x: Tensor, rows_out: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Asymmetric 8-bit activations, one scale and integer zero point per row: `(q [rows, in] uint8, scale
    [rows, 1], offset [rows, 1])` with `x ~ scale * (q - 128) + offset` (both float32), so `q - 128` is what
    oneDNN's GEMM sees with its zero point of 128. Each row's `[min, max]` spans 253 of the 256 levels (the
    other three absorb the rounding of the zero point, so no clamp is needed). With `rows_out` (>= rows) `q` has
    that many rows, the extra ones at 128, so a GEMM block needs no padded copy.

    One pass over `x` after its row minima and maxima: `x / scale + zero_point + 1.5 * 2^23` as an eval-mode
    `batch_norm` with one channel per row (torch's one fused, vectorized per-row affine; a broadcast `addcmul`
    or `sub` + `mul` costs 2-3x more), whose float32 result holds the rounded level in its low mantissa byte.
    """
    rows = x.shape[0]
    lo, hi = x.amin(dim=1), x.amax(dim=1)  # [rows]
    # the levels x / scale stay within 2^21 (|error| < 1/8 level in float32): a narrow row far from 0 gets a
    # coarser step, still under 2^-21 of its magnitude (max(|lo|, |hi|) = max(hi, -lo) as lo <= hi)
    scale = torch.maximum(hi - lo, torch.maximum(hi, lo.neg()).mul_(_LEVELS * 2.0**-21)).mul_(1.0 / _LEVELS)
    inverse = scale.clamp_min_(1e-12).reciprocal()
    # lowest level >= 0 and highest <= 254 whichever way x * inverse rounds (it may differ from lo * inverse by one)
    zero_point = torch.addcmul(_HALF_PLUS, lo, inverse, value=-1.0).ceil_()  # [rows], integers
    bits = (
        F.batch_norm(
            x[None],
            torch.zeros(rows),
            torch.ones(rows),
            inverse,
            zero_point + _ROUNDING,
            training=False,
            momentum=0.0,
            eps=0.0,
        )
        .view(rows, -1)
        .view(torch.int32)
    )  # [rows, in]: 0x4B400000 + level
    q = torch.empty((rows if rows_out is None else rows_out, x.shape[1]), dtype=torch.uint8, device=x.device)
    q[:rows].copy_(bits)  # int32 -> uint8 keeps the low byte: the level
    if rows_out is not None and rows_out > rows:
        q[rows:].fill_(_ZERO_POINT)
    scale = scale[:, None]
    return q, scale, zero_point.sub_(_ZERO_POINT).mul_(scale.view(-1).neg())[:, None]  # the value of q = 128


def _reference_int8_linear(qx: Tensor, qweight: Tensor, weight_scale: Tensor) -> Tensor:
    """`(qx - 128) @ qweight.T * weight_scale` in float32: exact while every partial sum stays below 2^24."""
    return F.linear(qx.float() - _ZERO_POINT, qweight.float()) * weight_scale


class Int8Linear(nn.Module):
    """A frozen `nn.Linear` as an int8 GEMM: `forward(x [tokens, in] float32) -> [tokens, out] float32`.

    Built once by `from_float`; holds the int8 weight, its per-channel scales and, where oneDNN runs int8, the
    prepacked weight. Not trainable (no autograd through the quantization).
    """

    def __init__(self, qweight: Tensor, weight_scale: Tensor, bias: Tensor | None, use_onednn: bool | None = None):
        super().__init__()
        if qweight.dtype != torch.int8 or qweight.dim() != 2:
            raise ValueError(f"qweight must be a 2-d int8 tensor, got {qweight.dtype} {tuple(qweight.shape)}")
        self.out_features, self.in_features = qweight.shape
        self.register_buffer("qweight", qweight, persistent=False)  # [out, in] int8
        self.register_buffer("weight_scale", weight_scale.float().contiguous(), persistent=False)  # [out]
        self.register_buffer("bias", None if bias is None else bias.detach().float(), persistent=False)  # [out]
        self.use_onednn = onednn_int8_supported() if use_onednn is None else use_onednn
        # u[j] = s_w[j] * sum_k q_w[j, k]: what a row offset of 1 adds to output j
        self.register_buffer(
            "_offset_gain", qweight.sum(dim=1, dtype=torch.int32).float() * self.weight_scale, persistent=False
        )
        self._zeros = torch.zeros(self.out_features, dtype=torch.int64)
        self._packed = (
            torch.ops.onednn.qlinear_prepack(qweight, [_GEMM_BLOCK, self.in_features]) if self.use_onednn else None
        )

    @classmethod
    def from_float(cls, linear: nn.Linear, use_onednn: bool | None = None) -> Int8Linear:
        """Quantize `linear`'s weight (per output channel, once); the bias stays float32."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"expected an nn.Linear, got {type(linear).__name__}")
        if linear.weight.device.type != "cpu":
            raise ValueError(f"int8 inference runs on CPU; the layer is on {linear.weight.device}")
        qweight, scale = quantize_per_channel(linear.weight)
        return cls(qweight, scale, linear.bias, use_onednn)

    def _gemm(self, qx: Tensor, rows: int) -> Tensor:
        """`(qx - 128) @ qweight.T * weight_scale` of the first `rows` rows, float32 `[rows, out]` (`qx` already
        holds the padded rows of `_gemm_row_blocks`, at the zero point)."""
        if not self.use_onednn:
            return _reference_int8_linear(qx[:rows], self.qweight, self.weight_scale)
        parts = []
        for start, block_rows, padded in _gemm_row_blocks(rows):
            out = torch.ops.onednn.qlinear_pointwise(
                qx[start : start + padded], 1.0, _ZERO_POINT, self._packed, self.weight_scale, self._zeros, None,
                1.0, 0, torch.float32, "none", [], "",
            )  # fmt: skip
            parts.append(out if padded == block_rows else out[:block_rows])
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"expected x of shape [tokens, {self.in_features}], got {tuple(x.shape)}")
        if x.shape[0] == 0:
            return x.new_empty((0, self.out_features), dtype=torch.float32)
        rows = x.shape[0]
        blocks = _gemm_row_blocks(rows)
        padded_rows = blocks[-1][0] + blocks[-1][2] if self.use_onednn else rows
        qx, x_scale, x_offset = quantize_rows(x.float(), padded_rows)  # [padded_rows, in] uint8, [tokens, 1] x2
        acc = self._gemm(qx, rows)  # [tokens, out] float32 of our own: the epilogue writes into it
        if self.bias is None:
            acc.mul_(x_scale)
        else:
            torch.addcmul(self.bias, acc, x_scale, out=acc)
        return acc.addr_(x_offset.view(-1), self._offset_gain)  # + c[i] * u[j]

    def extra_repr(self) -> str:
        kernel = "onednn" if self.use_onednn else "reference"
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel={kernel}"


def _norm(norm: nn.LayerNorm):
    weight, bias = norm.weight.detach().float(), norm.bias.detach().float()
    shape, eps = norm.normalized_shape, norm.eps
    return lambda x: F.layer_norm(x, shape, weight, bias, eps)


def weights_key(encoder: nn.Module) -> tuple:
    """Which parameter versions an int8 copy was made from (it is stale once any of them changes)."""
    return _weights_key(encoder, torch.int8)


class Int8InferenceWeights:
    """The linear layers of a CPU `TransformerEncoder` in int8, for `TransformerEncoder.infer(batch, weights)`.

    Same interface as `InferenceWeights` (`dtype`, `key`, `layers`, `layer(i, x, grid)`): hidden states,
    attention, LayerNorms and the feed-forward activation stay float32 (`dtype`), only the four GEMMs of each
    block run in int8.
    """

    def __init__(self, encoder):
        from kosim.nn.encoder import activation

        if encoder.tok_emb.weight.device.type != "cpu":
            raise ValueError(f"int8 inference runs on CPU; the encoder is on {encoder.tok_emb.weight.device}")
        self.dtype = torch.float32
        self.key = weights_key(encoder)
        self.act = activation(encoder.config.hidden_act)
        self.num_heads = encoder.config.num_attention_heads
        self.layers = [
            (
                Int8Linear.from_float(block.attn.qkv),
                Int8Linear.from_float(block.attn.out),
                _norm(block.attn_norm),
                Int8Linear.from_float(block.ff_in),
                Int8Linear.from_float(block.ff_out),
                _norm(block.ff_norm),
            )
            for block in encoder.layers
        ]

    def layer(self, i: int, x: Tensor, grid: AttentionGrid) -> Tensor:
        """One Transformer block on `x [tokens, hidden]` float32."""
        qkv, out, attn_norm, ff_in, ff_out, ff_norm = self.layers[i]
        x = attn_norm(x + out(grid.attention(qkv(x), self.num_heads)))
        return ff_norm(x + ff_out(self.act(ff_in(x))))


__all__ = ["Int8InferenceWeights", "Int8Linear", "onednn_int8_supported", "quantize_per_channel", "quantize_rows"]
