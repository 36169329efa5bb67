"""The legacy `model.fit(train_objectives=[(DataLoader, loss)])` with InputExample, once through
sentence-transformers and once through kosim.st: equal weights and embeddings (dropout off).

One objective gets the same batches in both (the loaders are read once in the order a pass yields them, from the
same global RNG; then both reshuffle each epoch from `seed + epoch`). With several objectives
sentence-transformers' per-dataset samplers share one generator while kosim seeds each dataset's own, so the
orders differ: that script is compared with sentence-transformers given kosim's batches.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import KOREAN, build_checkpoint
from kosim_plan import give_sentence_transformers_kosim_batches
from torch.utils.data import DataLoader

st = pytest.importorskip("sentence_transformers")
pytest.importorskip("datasets")
import sentence_transformers.losses  # noqa: E402,F401

import kosim.st as ks  # noqa: E402
from kosim.nn.loading import to_hf_state_dict  # noqa: E402

TOLERANCE = 2e-4
TEXTS = [f"{t} {i}" for i, t in enumerate(KOREAN * 3)][:22]  # 22 rows: batches of 4 do not divide them


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_checkpoint(
        tmp_path_factory.mktemp("bert_no_dropout"), "bert", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # sentence-transformers' fit writes checkpoints/model under the working directory


def _script(lib, model_dir, objectives=1, **fit_kwargs):
    """A Korean-tutorial style script: InputExamples in shuffling DataLoaders, then model.fit."""
    model = lib.SentenceTransformer(str(model_dir), device="cpu")
    scored = [lib.InputExample(texts=[t, t[::-1]], label=(i % 5) / 4) for i, t in enumerate(TEXTS)]
    train = [(DataLoader(scored, shuffle=True, batch_size=4), lib.losses.CosineSimilarityLoss(model))]
    if objectives == 2:
        pairs = [lib.InputExample(texts=[t, t[1:]]) for t in TEXTS[:18]]
        train.append((DataLoader(pairs, shuffle=True, batch_size=4), lib.losses.MultipleNegativesRankingLoss(model)))
    torch.manual_seed(1)  # the loaders' shuffle draws from the global RNG
    settings = dict(epochs=2, warmup_steps=2, optimizer_params={"lr": 1e-4}, show_progress_bar=False)
    model.fit(train_objectives=train, **{**settings, **fit_kwargs})
    return model.eval()


def _assert_same(theirs, ours):
    weights_ours, weights_theirs = to_hf_state_dict(ours.encoder), theirs[0].auto_model.state_dict()
    worst = max((weights_ours[n] - weights_theirs[n]).abs().max().item() for n in weights_ours if n in weights_theirs)
    assert worst < TOLERANCE
    np.testing.assert_allclose(ours.encode(KOREAN), theirs.encode(KOREAN), atol=TOLERANCE, rtol=0)


def test_fit_with_input_examples_equals_sentence_transformers(model_dir):
    # 22 rows in batches of 4: sentence-transformers sizes the schedule with 22 // 4 = 5 steps an epoch (6 run)
    _assert_same(_script(st, model_dir), _script(ks, model_dir))


def test_fit_with_two_objectives_round_robin(model_dir, monkeypatch):
    ours = _script(ks, model_dir, objectives=2)
    give_sentence_transformers_kosim_batches(monkeypatch)
    _assert_same(_script(st, model_dir, objectives=2), ours)


def test_fit_saves_the_best_model_and_calls_back(model_dir, tmp_path):
    evaluator = ks.evaluation.EmbeddingSimilarityEvaluator(TEXTS[:8], TEXTS[8:16], [(i % 4) / 3 for i in range(8)])
    calls = []
    model = _script(
        ks,
        model_dir,
        evaluator=evaluator,
        evaluation_steps=3,
        output_path=str(tmp_path / "best"),
        callback=lambda score, epoch, steps: calls.append((score, steps)),
    )
    assert [steps for _, steps in calls] == [3, 6, 9, 12]  # every 3 steps (the last one is the end of the run)
    best = ks.SentenceTransformer(str(tmp_path / "best"), device="cpu")
    assert evaluator(best)[evaluator.primary_metric] == pytest.approx(max(s for s, _ in calls), abs=1e-6)
    assert model.tokenize(["a"])["input_ids"].ndim == 2  # sentence-transformers' tokenize is back after fit


def test_fit_saves_the_final_model_to_output_path_and_keeps_the_loader(model_dir, tmp_path):
    model = ks.SentenceTransformer(str(model_dir), device="cpu")
    examples = [ks.InputExample(texts=[t, t[::-1]]) for t in TEXTS]
    loader = DataLoader(examples, shuffle=True, batch_size=4)
    collate = loader.collate_fn
    loss = ks.losses.MultipleNegativesRankingLoss(model)
    model.fit([(loader, loss)], epochs=1, output_path=str(tmp_path / "final"), show_progress_bar=False)
    assert loader.collate_fn is collate
    saved = ks.SentenceTransformer(str(tmp_path / "final"), device="cpu")
    np.testing.assert_allclose(saved.encode(KOREAN), model.encode(KOREAN), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer_class": torch.optim.SGD}, "optimizer_class"),
        ({"scheduler": "WarmupCosine"}, "scheduler='WarmupCosine'"),
        ({"optimizer_params": {"lr": 1e-4, "amsgrad": True}}, "amsgrad"),
    ],
)
def test_fit_refuses_what_kosim_does_not_have(model_dir, kwargs, match):
    model = ks.SentenceTransformer(str(model_dir), device="cpu")
    loader = DataLoader([ks.InputExample(texts=["a", "b"])] * 4, batch_size=2)
    with pytest.raises(ValueError, match=match):
        model.fit([(loader, ks.losses.MultipleNegativesRankingLoss(model))], **kwargs)


def test_fit_refuses_uneven_examples_and_batch_sizes(model_dir):
    model = ks.SentenceTransformer(str(model_dir), device="cpu")
    loss = ks.losses.MultipleNegativesRankingLoss(model)
    uneven = [ks.InputExample(texts=["a", "b"]), ks.InputExample(texts=["c", "d", "e"])]
    with pytest.raises(ValueError, match="same number of texts"):
        model.fit([(DataLoader(uneven, batch_size=2), loss)])
    rows = [ks.InputExample(texts=["a", "b"])] * 4
    with pytest.raises(ValueError, match="different batch sizes"):
        model.fit([(DataLoader(rows, batch_size=2), loss), (DataLoader(rows, batch_size=4), loss)])
