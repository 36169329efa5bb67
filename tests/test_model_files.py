"""Model directories that must be refused with a clear error naming the file: escaping module paths, broken
weights, an invalid tokenizer.json, an impossible config.json; each also exits 2 from the CLI."""

from __future__ import annotations

import json
import re
import shutil
import struct

import pytest
import torch

from kosim.cli.main import main
from kosim.model import SentenceEncoder
from kosim.nn.loading import CheckpointError


@pytest.fixture(scope="module")
def st_dir(bert_dir, tmp_path_factory):
    """A sentence-transformers directory (transformer at the root, then 1_Pooling, 2_Dense, 3_Normalize)."""
    from kosim.pooling import Dense, Normalize

    model = SentenceEncoder.load(bert_dir)
    torch.manual_seed(0)
    model.post.extend([Dense(model.embedding_dim, 8), Normalize()])
    return model.save(tmp_path_factory.mktemp("st") / "model")


def _copy(src, tmp_path, name="model"):
    return shutil.copytree(src, tmp_path / name)


def _exits_2(model_dir, tmp_path, capsys, match: str) -> None:
    """`kosim encode` with this model exits 2 with one clear message (no traceback) matching `match`."""
    (tmp_path / "texts.txt").write_text("안녕하세요\n", encoding="utf-8")
    argv = ["encode", "--model", str(model_dir), "--input", str(tmp_path / "texts.txt")]
    assert main([*argv, "--output", str(tmp_path / "out.npy")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(match, err), err


def _rewrite_modules(model_dir, index: int, path: str) -> None:
    modules = json.loads((model_dir / "modules.json").read_text())
    modules[index]["path"] = path
    (model_dir / "modules.json").write_text(json.dumps(modules))


# ------------------------------------------------------------------------------- modules.json confinement (14.5)
@pytest.mark.parametrize("escape", ["../outside-model", "1_Pooling/../../outside-model", "ABSOLUTE"])
def test_module_paths_leaving_the_directory_are_refused(st_dir, tmp_path, capsys, escape):
    model_dir = _copy(st_dir, tmp_path)
    outside = shutil.copytree(st_dir / "1_Pooling", tmp_path / "outside-model")  # a loadable module out there
    path = str(outside) if escape == "ABSOLUTE" else escape
    _rewrite_modules(model_dir, 1, path)
    with pytest.raises(CheckpointError, match=rf"modules\.json: module path '{re.escape(path)}' leaves"):
        SentenceEncoder.load(model_dir)
    _exits_2(model_dir, tmp_path, capsys, r"modules\.json.*leaves the model directory")


def test_transformer_path_leaving_the_directory_is_refused(st_dir, tmp_path):
    model_dir = _copy(st_dir, tmp_path)
    _rewrite_modules(model_dir, 0, "..")
    with pytest.raises(CheckpointError, match=r"modules\.json: module path '\.\.' leaves"):
        SentenceEncoder.load(model_dir)


def test_module_paths_inside_the_directory_still_load(st_dir, tmp_path):
    model_dir = _copy(st_dir, tmp_path)
    _rewrite_modules(model_dir, 1, "./sub/../1_Pooling")
    expected = SentenceEncoder.load(st_dir).encode(["가나다"])
    assert (SentenceEncoder.load(model_dir).encode(["가나다"]) == expected).all()


# ------------------------------------------------------------------------------- broken weights (14.6)
def _safetensors_header(path):
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + size]), raw[8 + size :]


def _write_safetensors(path, header, body):
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + body)


def test_retagged_dtype_is_refused(st_dir, tmp_path, capsys):
    model_dir = _copy(st_dir, tmp_path)
    header, body = _safetensors_header(model_dir / "model.safetensors")
    name = next(k for k in header if k.endswith("attention.self.query.weight"))
    assert header[name]["dtype"] == "F32"
    header[name]["dtype"] = "I32"  # same byte size: the file stays readable
    _write_safetensors(model_dir / "model.safetensors", header, body)
    with pytest.raises(CheckpointError, match=rf"weight '{name}' has dtype torch.int32, expected a floating-point"):
        SentenceEncoder.load(model_dir)
    _exits_2(model_dir, tmp_path, capsys, rf"{name}.*torch\.int32")


def _rewrite_weights(model_dir, edit) -> str:
    from safetensors.torch import load_file, save_file

    state = load_file(str(model_dir / "model.safetensors"))
    name = edit(state)
    save_file(state, str(model_dir / "model.safetensors"), {"format": "pt"})
    return name


def test_int8_weights_are_refused(st_dir, tmp_path):
    model_dir = _copy(st_dir, tmp_path)

    def to_int8(state):
        name = "encoder.layer.1.output.dense.weight"
        state[name] = (state[name] * 100).round().to(torch.int8)
        return name

    name = _rewrite_weights(model_dir, to_int8)
    with pytest.raises(CheckpointError, match=rf"weight '{name}' has dtype torch.int8"):
        SentenceEncoder.load(model_dir)


@pytest.mark.parametrize(("value", "name"), [(float("nan"), "embeddings.LayerNorm.bias"), (float("inf"), "pooler")])
def test_non_finite_weights_are_refused(st_dir, tmp_path, value, name):
    model_dir = _copy(st_dir, tmp_path)

    def poison(state):
        key = next(k for k in state if k.startswith(name))
        state[key].view(-1)[3] = value
        return key

    key = _rewrite_weights(model_dir, poison)
    with pytest.raises(CheckpointError, match=rf"weight '{key}' holds 1 NaN or infinite value"):
        SentenceEncoder.load(model_dir)


def test_non_finite_dense_weights_are_refused(st_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    model_dir = _copy(st_dir, tmp_path)
    state = load_file(str(model_dir / "2_Dense" / "model.safetensors"))
    state["linear.weight"][0, 0] = float("nan")
    save_file(state, str(model_dir / "2_Dense" / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"2_Dense: weight 'linear.weight' holds 1 NaN"):
        SentenceEncoder.load(model_dir)


def test_half_precision_weights_still_load(st_dir, tmp_path):
    model_dir = _copy(st_dir, tmp_path)
    _rewrite_weights(model_dir, lambda state: state.update({k: v.half() for k, v in state.items()}))
    reference = SentenceEncoder.load(st_dir).encode(["가나다"])
    assert abs(SentenceEncoder.load(model_dir).encode(["가나다"]) - reference).max() < 1e-2


# ------------------------------------------------------------------------------- tokenizer.json, config.json (14.7)
@pytest.mark.parametrize("content", ["{broken", '{"version": "1.0"}', "[]"])
def test_invalid_tokenizer_json_names_the_file(st_dir, tmp_path, capsys, content):
    model_dir = _copy(st_dir, tmp_path)
    (model_dir / "tokenizer.json").write_text(content, encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"tokenizer\.json: not a valid tokenizer file"):
        SentenceEncoder.load(model_dir)
    _exits_2(model_dir, tmp_path, capsys, r"tokenizer\.json: not a valid tokenizer file")


def test_hidden_size_not_divisible_by_heads_names_config_json(st_dir, tmp_path, capsys):
    model_dir = _copy(st_dir, tmp_path)
    config = json.loads((model_dir / "config.json").read_text())
    config.update(hidden_size=30, num_attention_heads=4)
    (model_dir / "config.json").write_text(json.dumps(config))
    match = r"config\.json: hidden_size \(30\) must be divisible by num_attention_heads \(4\)"
    with pytest.raises(CheckpointError, match=match):
        SentenceEncoder.load(model_dir)
    _exits_2(model_dir, tmp_path, capsys, match)
