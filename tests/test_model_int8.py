"""encode(dtype="int8"): int8 GEMMs (kosim.nn.int8) behind the public encode and the CLI, checked against fp32."""

from __future__ import annotations

import numpy as np
import pytest

from kosim.cli.main import main
from kosim.data import korsts_path, read_korsts
from kosim.model import SentenceEncoder
from kosim.nn.int8 import onednn_int8_supported


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    dev = read_korsts(korsts_path("dev"))
    # + the KorSTS-dev sentences farthest from float32 under symmetric per-row activations (MiniLM cosine 0.983-0.986)
    hard = [
        "시위자들은 그 나라의 최고 지도자인 강경파 아야톨라 알리 카메네이를 비난했다.",
        "증상으로는 만성 설사, 복통, 체중 감량, 극도의 피로 등이 있다.",
        "아부다비에서 황금 시장은 최고의 공공 야외 쇼핑 지역 중 하나이다.",
    ]
    return dev.column("sentence1")[:61] + hard


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("fixture", ["bert_dir", "minilm"])
def test_int8_encode_is_close_to_float32(fixture, sentences, request):
    model = SentenceEncoder.load(request.getfixturevalue(fixture))
    fp32 = model.encode(sentences, batch_size=16)
    int8 = model.encode(sentences, batch_size=16, dtype="int8")
    assert int8.dtype == np.float32 and int8.shape == fp32.shape
    cos = _cosines(fp32, int8)
    assert cos.min() > 0.99 and cos.mean() > 0.995, (cos.min(), cos.mean())  # issue 17: cosine >= 0.99 to fp32
    assert not np.array_equal(fp32, int8)  # the int8 path really ran
    np.testing.assert_array_equal(model.encode(sentences, batch_size=16, dtype="int8"), int8)  # cached, deterministic
    one = model.encode(sentences[:1], dtype="int8")
    np.testing.assert_allclose(one[0], int8[0], atol=1e-5)  # a row does not depend on its batch-mates


def test_int8_weights_follow_parameter_updates(bert_dir, sentences):
    import torch

    model = SentenceEncoder.load(bert_dir)
    before = model.encode(sentences[:4], dtype="int8")
    with torch.no_grad():
        model.encoder.layers[0].ff_in.weight.mul_(1.5)
    after = model.encode(sentences[:4], dtype="int8")
    assert not np.allclose(before, after)  # the cached int8 copy was rebuilt


def test_cli_encode_int8(bert_dir, tmp_path):
    texts = tmp_path / "t.txt"
    texts.write_text("한 남자가 춤을 춘다.\n비행기가 이륙한다.\n", encoding="utf-8")
    out = tmp_path / "e.npy"
    assert (
        main(["encode", "--model", str(bert_dir), "--input", str(texts), "--output", str(out), "--dtype", "int8"]) == 0
    )
    fp32 = SentenceEncoder.load(bert_dir).encode(["한 남자가 춤을 춘다.", "비행기가 이륙한다."])
    assert _cosines(np.load(out), fp32).min() > 0.98


def test_onednn_int8_kernel_available_here():
    """Where oneDNN's int8 GEMM is missing, Int8Linear falls back to a float reference (correct, not fast)."""
    assert isinstance(onednn_int8_supported(), bool)
