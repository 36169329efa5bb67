"""kosim's encoder against transformers' BertModel / RobertaModel / XLMRobertaModel, and packed against padded."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

from kosim.nn import CheckpointError, load_encoder, pack_padded, resolve_model_dir
from kosim.nn.encoder import TransformerEncoder

TEXTS = [
    "안전모를 가진 한 남자가 춤을 추고 있다.",
    "아이",
    "한 여성이 고기를 요리하고 있다. 비행기가 이륙하고 있다.",
    "x",
]


def _load_pair(path):
    ours = load_encoder(path, json.loads((path / "config.json").read_text())).eval()
    ref = transformers.AutoModel.from_pretrained(str(path)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(path))
    return ours, ref, tok


@pytest.mark.parametrize("kind", ["bert_dir", "roberta_dir", "xlmr_dir"])
def test_padded_matches_transformers(kind, request):
    path = request.getfixturevalue(kind)
    ours, ref, tok = _load_pair(path)
    enc = tok(TEXTS, padding=True, truncation=True, max_length=12, return_tensors="pt")
    with torch.no_grad():
        expected = ref(**enc).last_hidden_state
        got = ours.forward_padded(enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids"))
    mask = enc["attention_mask"].bool()
    assert (got[mask] - expected[mask]).abs().max().item() <= 1e-5


def test_token_type_ids_are_used(bert_dir):
    ours, ref, tok = _load_pair(bert_dir)
    enc = tok(TEXTS[:2], TEXTS[2:], padding=True, return_tensors="pt")
    assert enc["token_type_ids"].any()
    with torch.no_grad():
        expected = ref(**enc).last_hidden_state
        got = ours.forward_padded(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    mask = enc["attention_mask"].bool()
    assert (got[mask] - expected[mask]).abs().max().item() <= 1e-5


@pytest.mark.parametrize("kind", ["bert_dir", "roberta_dir"])
def test_packed_equals_padded_outputs_and_gradients(kind, request):
    path = request.getfixturevalue(kind)
    ours, _, tok = _load_pair(path)
    ours.train()
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    mask = enc["attention_mask"].bool()
    weights = torch.randn(int(mask.sum()), ours.hidden_size, generator=torch.Generator().manual_seed(0))

    # dropout off so both paths compute the same function; gradients compared on every parameter
    for m in ours.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    for layer in ours.layers:
        layer.attn.dropout_p = 0.0

    padded = ours.forward_padded(enc["input_ids"], enc["attention_mask"])[mask]
    (padded * weights).sum().backward()
    grads_padded = {n: p.grad.clone() for n, p in ours.named_parameters()}
    ours.zero_grad()
    packed = ours(pack_padded(enc["input_ids"], enc["attention_mask"]))
    (packed * weights).sum().backward()
    assert (packed - padded).abs().max().item() <= 1e-5
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads_padded[name], atol=1e-5, rtol=1e-4, msg=name)


def test_missing_weight_is_named(bert_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(str(bert_dir / "model.safetensors"))
    del state["encoder.layer.1.output.dense.weight"]
    state["encoder.layer.0.extra.weight"] = torch.zeros(2)
    save_file(state, str(tmp_path / "model.safetensors"))
    cfg = json.loads((bert_dir / "config.json").read_text())
    with pytest.raises(CheckpointError, match=r"encoder\.layer\.1\.output\.dense\.weight.*encoder\.layer\.0\.extra"):
        load_encoder(tmp_path, cfg)


def test_pytorch_bin_and_sharded_checkpoints(bert_dir, tmp_path):
    from safetensors.torch import load_file

    cfg = json.loads((bert_dir / "config.json").read_text())
    state = load_file(str(bert_dir / "model.safetensors"))
    reference = load_encoder(bert_dir, cfg).state_dict()

    single = tmp_path / "bin"
    single.mkdir()
    torch.save(state, single / "pytorch_model.bin")
    for name, tensor in load_encoder(single, cfg).state_dict().items():
        assert torch.equal(tensor, reference[name]), name

    sharded = tmp_path / "sharded"
    sharded.mkdir()
    keys = sorted(state)
    from safetensors.torch import save_file

    halves = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    weight_map = {}
    for shard, shard_keys in halves.items():
        save_file({k: state[k] for k in shard_keys}, str(sharded / shard))
        weight_map.update({k: shard for k in shard_keys})
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    for name, tensor in load_encoder(sharded, cfg).state_dict().items():
        assert torch.equal(tensor, reference[name]), name


def test_prefixed_checkpoint_with_heads_loads(roberta_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(str(roberta_dir / "model.safetensors"))
    prefixed = {f"roberta.{k}": v for k, v in state.items()}
    prefixed["lm_head.dense.weight"] = torch.zeros(3, 3)
    save_file(prefixed, str(tmp_path / "model.safetensors"))
    cfg = json.loads((roberta_dir / "config.json").read_text())
    model = load_encoder(tmp_path, cfg)
    assert isinstance(model, TransformerEncoder)


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_model_dir(tmp_path / "nope")


def _mixed_batch(model, seed=0):
    """A packed batch of mixed lengths (several attention buckets)."""
    from kosim.nn import pack

    rng = np.random.default_rng(seed)
    lengths = [3, 17, 5, 40, 2, 9, 33, 1, 12, 25]
    return pack([rng.integers(5, model.config.vocab_size, size=n).tolist() for n in lengths])


@pytest.mark.parametrize("kind", ["bert_dir", "roberta_dir", "xlmr_dir"])
def test_infer_float32_equals_forward(kind, request):
    path = request.getfixturevalue(kind)
    model = load_encoder(path, json.loads((path / "config.json").read_text())).eval()
    batch = _mixed_batch(model)
    assert len(batch.buckets) > 1
    with torch.no_grad():
        expected = model(batch)
    got = model.infer(batch)
    assert got.dtype == torch.float32 and not got.requires_grad
    assert (got - expected).abs().max().item() <= 1e-5


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "relu", "silu"])
def test_infer_bfloat16_close_to_float32(act, tmp_path):
    from helpers import build_checkpoint

    path = build_checkpoint(tmp_path / act, "bert", hidden_act=act)
    model = load_encoder(path, json.loads((path / "config.json").read_text())).eval()
    batch = _mixed_batch(model)
    with torch.no_grad():
        full = model(batch)
    half = model.infer(batch, model.inference_weights(torch.bfloat16))
    assert half.dtype == torch.bfloat16
    cos = torch.nn.functional.cosine_similarity(full, half.float(), dim=-1)
    assert cos.min().item() > 0.99


def test_training_forward_under_bf16_autocast_uses_the_same_dropout_masks(bert_dir):
    # dropout masks come from the generator, not the dtype: with one seed, bf16 autocast and float32 training
    # forwards drop the same elements, so their outputs agree to bf16 precision and gradients stay finite
    model = load_encoder(bert_dir, json.loads((bert_dir / "config.json").read_text())).train()
    batch = _mixed_batch(model)
    torch.manual_seed(7)
    full = model(batch)
    torch.manual_seed(7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = model(batch)
    assert not torch.equal(full, half.float())  # the matmuls did run in bf16 (LayerNorm returns float32)
    cos = torch.nn.functional.cosine_similarity(full, half.float(), dim=-1)
    assert cos.min().item() > 0.99
    torch.manual_seed(8)
    other = model(batch)  # another seed, other masks
    assert torch.nn.functional.cosine_similarity(full, other, dim=-1).min().item() < 0.99
    half.float().pow(2).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


def test_inference_weights_follow_parameter_updates(bert_dir):
    model = load_encoder(bert_dir, json.loads((bert_dir / "config.json").read_text())).eval()
    batch = _mixed_batch(model)
    first = model.inference_weights(torch.bfloat16)
    assert model.inference_weights(torch.bfloat16) is first  # cached
    before = model.infer(batch, first).float()
    with torch.no_grad():
        model.layers[0].ff_out.bias.add_(1.0)  # an in-place update, as an optimizer step makes
    second = model.inference_weights(torch.bfloat16)
    assert second is not first
    after = model.infer(batch, second).float()
    with torch.no_grad():
        expected = model(batch)
    assert (after - before).abs().max().item() > 1e-2
    assert torch.nn.functional.cosine_similarity(after, expected, dim=-1).min().item() > 0.99
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["layers.1.ff_in.weight"].mul_(0.5)
    model.load_state_dict(state)
    assert model.inference_weights(torch.bfloat16) is not second
    model.clear_inference_weights()
    assert model.__dict__["_inference_weights"] is None


def _onednn_fp32_prepack_works() -> bool:
    try:
        w = torch.ops.mkldnn._reorder_linear_weight(torch.ones(4, 8))
        torch.ops.mkldnn._linear_pointwise(torch.ones(2, 8), w, None, "none", [], "")
    except (RuntimeError, AttributeError):
        return False
    return True


@pytest.mark.skipif(not _onednn_fp32_prepack_works(), reason="oneDNN prepacked linear unavailable in this build")
@pytest.mark.parametrize("act", [None, ("gelu", "none"), ("gelu", "tanh"), ("relu", "")])
def test_prepacked_linear_row_blocks_equal_plain_linear(act, monkeypatch):
    import kosim.nn.inference as enc

    torch.manual_seed(0)
    layer = torch.nn.Linear(24, 40)
    packed = enc._InferenceLinear(layer, torch.float32, prepack=True)
    plain = enc._InferenceLinear(layer, torch.float32, prepack=False)
    monkeypatch.setattr(enc, "_GEMM_BLOCK", 64)
    monkeypatch.setattr(enc, "_GEMM_ALIGN", 16)
    shapes = set()
    real = enc._onednn_linear

    def recording(x, *args):
        shapes.add(tuple(x.shape))
        return real(x, *args)

    monkeypatch.setattr(enc, "_onednn_linear", recording)
    for rows in [0, 1, 15, 16, 17, 63, 64, 65, 128, 200, 333]:
        x = torch.randn(rows, 24)
        got, expected = packed(x, act), plain(x, act)
        assert got.shape == (rows, 40)
        assert (got - expected).abs().max().item() <= 1e-5 if rows else got.numel() == 0
    for rows in range(1, 1000):
        packed(torch.randn(rows, 24))
    # a bounded set of GEMM shapes (oneDNN caches one compiled primitive per shape): full blocks + 4 padded tails
    assert {r for r, _ in shapes} == {16, 32, 48, 64}


def test_gemm_row_blocks_cover_every_row():
    import kosim.nn.inference as enc

    for rows in [1, 127, 128, 129, 2047, 2048, 2049, 10_000]:
        blocks = enc._gemm_row_blocks(rows)
        assert sum(n for _, n, _ in blocks) == rows
        assert [s for s, _, _ in blocks] == list(range(0, rows, enc._GEMM_BLOCK))
        assert all(p % enc._GEMM_ALIGN == 0 and n <= p <= enc._GEMM_BLOCK for _, n, p in blocks)
