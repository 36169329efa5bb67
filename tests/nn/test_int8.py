"""kosim.nn.int8: int8 linear layers (weights per output channel once, activations per row) for CPU inference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kosim.nn import int8 as int8_mod
from kosim.nn.int8 import (
    _ZERO_POINT,
    Int8InferenceWeights,
    Int8Linear,
    onednn_int8_supported,
    quantize_per_channel,
    quantize_rows,
)

KERNELS = [False] + ([True] if onednn_int8_supported() else [])


def _linear(in_features: int, out_features: int, seed: int = 0, bias: bool = True) -> torch.nn.Linear:
    torch.manual_seed(seed)
    layer = torch.nn.Linear(in_features, out_features, bias=bias)
    with torch.no_grad():
        layer.weight.normal_(0.0, 0.05)
        if bias:
            layer.bias.normal_(0.0, 0.1)
    return layer


def _integer_reference(x: torch.Tensor, layer: torch.nn.Linear) -> torch.Tensor:
    """The int8 arithmetic written out independently in float64: quantize both sides, exact integer dot, rescale."""
    w = layer.weight.detach().double()
    sw = w.abs().amax(dim=1) / 127.0
    qw = torch.round(w / sw[:, None]).clamp(-127, 127)
    xd = x.double()
    lo, hi = xd.amin(dim=1, keepdim=True), xd.amax(dim=1, keepdim=True)
    # the row's [min, max] on 252 steps (no finer than 2^-21 of its magnitude), an integer zero point
    sx = torch.maximum((hi - lo) / 252.0, torch.maximum(hi.abs(), lo.abs()) * 2.0**-21).clamp_min(1e-12)
    zp = torch.ceil(0.51 - lo / sx)
    qx = torch.round(xd / sx) + zp  # [rows, in] in [0, 254]
    # x ~ (qx - zp) * sx, so x @ w.T ~ (qx @ qw.T) * sx * sw - zp * sx * (sum_k qw * sw)
    y = (qx @ qw.T) * sx * sw - zp * sx * (qw.sum(dim=1) * sw)  # integer products summed exactly in float64
    return y + layer.bias.detach().double() if layer.bias is not None else y


@pytest.mark.parametrize("use_onednn", KERNELS)
@pytest.mark.parametrize("tokens,in_features,out_features", [(13, 37, 19), (64, 32, 96), (2100, 40, 24), (1, 8, 8)])
def test_equals_integer_reference(use_onednn, tokens, in_features, out_features):
    """Shapes not multiple of 8, and more rows than one GEMM block (2048), give the exact int8 result."""
    layer = _linear(in_features, out_features)
    torch.manual_seed(1)
    x = torch.randn(tokens, in_features)
    y = Int8Linear.from_float(layer, use_onednn=use_onednn)(x)
    assert y.dtype == torch.float32 and y.shape == (tokens, out_features)
    ref = _integer_reference(x, layer)
    # float32 rounding of the scales and of the final multiply-add only: a few ulps of |y|
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_onednn", KERNELS)
def test_close_to_float32_linear(use_onednn):
    """Relative RMS error vs fp32 F.linear stays under 3%.

    Rounding to a step of s = amax / 127 adds uniform noise of std s / sqrt(12) to each input and weight. For
    Gaussian rows of width 384 amax is about 3.2 sigma, so each side contributes 3.2 / 127 / sqrt(12) = 0.73% of
    its RMS, and the two independent errors give about 1.0% relative RMS error of the output (measured 1.02% here);
    3% leaves room for heavier tails without letting a wrong scale (>= 50% error) or a missing bias pass.
    """
    layer = _linear(384, 1536)
    torch.manual_seed(2)
    x = torch.randn(200, 384)
    y = Int8Linear.from_float(layer, use_onednn=use_onednn)(x)
    ref = F.linear(x, layer.weight.detach(), layer.bias.detach())
    rel = float((y - ref).norm() / ref.norm())
    assert rel < 0.03, rel


def test_weight_quantized_once(monkeypatch):
    """The weight is quantized at construction, never per call; later changes to the float layer do not leak in."""
    layer = _linear(24, 16)
    int8 = Int8Linear.from_float(layer)
    calls = []
    monkeypatch.setattr(int8_mod, "quantize_per_channel", lambda *a: calls.append(a) or quantize_per_channel(*a))
    x = torch.randn(5, 24)
    first = int8(x)
    with torch.no_grad():
        layer.weight.mul_(3.0)
    for _ in range(3):
        assert torch.equal(int8(x), first)
    assert calls == []


@pytest.mark.parametrize("use_onednn", KERNELS)
def test_deterministic_and_independent_of_the_batch(use_onednn):
    """Per-row scales and exact int32 sums: a row's output is bitwise the same alone, in any batch, on any call."""
    layer = _linear(48, 40)
    int8 = Int8Linear.from_float(layer, use_onednn=use_onednn)
    torch.manual_seed(3)
    x = torch.randn(9, 48)
    x[4] *= 50.0  # a row with a much larger range must not change the others (it would with a per-tensor scale)
    batch = int8(x)
    assert torch.equal(int8(x), batch)
    for i in (0, 4, 8):
        assert torch.equal(int8(x[i : i + 1]), batch[i : i + 1])


def test_zero_rows_and_empty_input():
    layer = _linear(16, 8)
    int8 = Int8Linear.from_float(layer)
    x = torch.zeros(3, 16)
    torch.testing.assert_close(int8(x), layer.bias.detach().expand(3, 8))
    assert int8(torch.zeros(0, 16)).shape == (0, 8)


def test_without_bias():
    layer = _linear(20, 12, bias=False)
    x = torch.randn(6, 20)
    torch.testing.assert_close(
        Int8Linear.from_float(layer)(x).double(), _integer_reference(x, layer), rtol=1e-5, atol=1e-5
    )


def test_bad_input_is_named():
    int8 = Int8Linear.from_float(_linear(16, 8))
    with pytest.raises(ValueError, match=r"\[tokens, 16\]"):
        int8(torch.randn(4, 15))
    with pytest.raises(TypeError, match="nn.Linear"):
        Int8Linear.from_float(torch.nn.Conv1d(2, 2, 1))


def test_quantize_rows_range():
    # lopsided rows, a constant row, a row far from 0 and a narrow row far from 0
    x = torch.tensor(
        [[1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [-3.0, 3.0, 1.5], [5.0, 6.0, 7.0], [1000.0, 1000.001, 1000.0005]]
    )
    q, scale, offset = quantize_rows(x)
    assert q.dtype == torch.uint8 and scale.shape == offset.shape == (5, 1)
    # each row's [min, max] spans 252 steps, inside 0..254 (the rounding of the zero point needs no clamp)
    levels = q.int()
    assert torch.all(levels[[0, 2, 3]].amax(dim=1) - levels[[0, 2, 3]].amin(dim=1) == 252)
    assert int(levels.min()) >= 0 and int(levels.max()) <= 254
    err = (scale.double() * (q.double() - 128) + offset.double() - x.double()).abs()
    assert torch.all(err[:4] <= scale[:4] * 0.5001), err  # within half a step
    # the narrow row far from 0: a coarser step, but under 2^-20 of its magnitude
    assert float(err[4].max()) <= 1000 * 2.0**-20, err[4]
    padded, _, _ = quantize_rows(x, rows_out=7)
    assert torch.equal(padded[:5], q) and torch.all(padded[5:] == 128)


def test_quantize_rows_rounds_to_nearest_level():
    """Against a float64 reference: every level is the nearest one (up to float32's rounding of x / scale), and
    the zero point keeps every row inside 0..254 whatever the row's position and width."""
    torch.manual_seed(0)
    x = torch.randn(600, 384) * torch.rand(600, 1).pow(4) * 5 + torch.randn(600, 1) * 3  # [rows, in]
    x[0] = 0.0
    x[1] = x[1].abs()  # all >= 0
    x[2] = -x[2].abs()  # all <= 0
    q, scale, offset = quantize_rows(x)
    s = scale.double()
    zero_point = _ZERO_POINT - (offset.double() / s).round()  # [rows, 1], integers
    exact = x.double() / s + zero_point  # [rows, in]
    off_by = (q.double() - exact).abs()
    # float32's x / scale is off by up to |x / scale| * 2^-23 (under 1/4 level: |x / scale| <= 2^21)
    slack = (x.double() / s).abs() * 2.0**-22 + 1e-4
    assert torch.all(off_by <= 0.5 + slack), float((off_by - 0.5 - slack).max())
    assert int(q.min()) >= 0 and int(q.max()) <= 254


def test_int8_inference_weights_on_the_encoder(bert_dir):
    """`TransformerEncoder.infer` with the int8 copy stays close to float32 and is float32 throughout."""
    from helpers import KOREAN

    from kosim.model import SentenceEncoder
    from kosim.nn import pack

    model = SentenceEncoder.load(bert_dir).eval()
    batch = pack(model.tokenize(KOREAN))
    ref = model.encoder.infer(batch)
    weights = Int8InferenceWeights(model.encoder)
    out = model.encoder.infer(batch, weights)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    cos = F.cosine_similarity(out, ref, dim=-1)
    assert float(cos.min()) > 0.99, float(cos.min())
    assert weights.key == int8_mod.weights_key(model.encoder)
    with torch.no_grad():
        model.encoder.layers[0].ff_in.weight.add_(0.01)
    assert weights.key != int8_mod.weights_key(model.encoder)  # a cache keyed on it rebuilds
