"""Encoding is safe to share: loaded models are in eval mode and `encode` never switches module state, so
concurrent calls on one model give exactly the sequential result (issue 14, defect 4)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import KOREAN, build_checkpoint
from torch import nn

from kosim.model import SentenceEncoder

TEXTS = [f"{a} {b}" * (1 + i % 3) for i, (a, b) in enumerate((a, b) for a in KOREAN for b in KOREAN)] * 3


@pytest.fixture(scope="module")
def dropout_dir(tmp_path_factory):
    """A tiny BERT whose config has heavy dropout, so any dropout during encode changes the numbers."""
    return build_checkpoint(
        tmp_path_factory.mktemp("dropout"), "bert", hidden_dropout_prob=0.5, attention_probs_dropout_prob=0.5
    )


def test_loaded_model_is_in_eval_mode(dropout_dir):
    model = SentenceEncoder.load(dropout_dir)
    assert not model.training
    assert not any(m.training for m in model.modules())


def test_encode_never_switches_module_mode(dropout_dir, monkeypatch):
    model = SentenceEncoder.load(dropout_dir)
    expected = model.encode(TEXTS[:16], batch_size=4)
    model.train()

    def refuse(self, mode=True):
        raise AssertionError(f"encode switched {type(self).__name__} to train({mode})")

    monkeypatch.setattr(nn.Module, "train", refuse)
    got = model.encode(TEXTS[:16], batch_size=4)  # training mode: still the no-dropout inference forward
    assert model.training and all(m.training for m in model.modules())
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("mode", ["as_loaded", "train"])
def test_concurrent_encode_equals_sequential(dropout_dir, mode):
    model = SentenceEncoder.load(dropout_dir)
    if mode == "train":
        model.train()
    before = [m.training for m in model.modules()]
    chunks = [TEXTS[i::4] for i in range(4)]
    sequential = [model.encode(chunk, batch_size=4) for chunk in chunks]
    threads, rounds = 4, 4
    results: dict[tuple[int, int], np.ndarray] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        try:
            start.wait()
            for r in range(rounds):
                results[t, r] = model.encode(chunks[(t + r) % 4], batch_size=4)
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert not errors, errors
    differing = [key for key, got in results.items() if not np.array_equal(got, sequential[(key[0] + key[1]) % 4])]
    assert not differing, f"{len(differing)} of {threads * rounds} concurrent results differ from sequential"
    assert [m.training for m in model.modules()] == before


def test_encode_on_a_foreign_encoder_in_training_mode_is_refused(bert_dir, tmp_path):
    """transformers' models have no dropout-free forward that leaves their mode alone: eval mode is required."""
    import json
    import shutil

    model_dir = shutil.copytree(bert_dir, tmp_path / "relative")
    config = json.loads((model_dir / "config.json").read_text())
    config["position_embedding_type"] = "relative_key"  # not kosim's own encoder: transformers runs it
    (model_dir / "config.json").write_text(json.dumps(config))
    model = SentenceEncoder.load(model_dir)
    assert type(model.encoder).__name__ == "HFEncoder"
    assert model.encode(["가나다"]).shape == (1, model.embedding_dim)
    model.train()
    with pytest.raises(RuntimeError, match=r"encode\(\) on a HFEncoder encoder needs eval mode"):
        model.encode(["가나다"])
    assert model.training
