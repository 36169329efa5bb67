"""Multi-process encoding (kosim.encode_pool): a pooled encode equals a plain one; failures surface, never hang.

Real worker processes are spawned (2 CPU workers, 1 thread each) on the tiny in-process BERT.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch
from helpers import KOREAN

from kosim.encode_pool import EncodePool, EncodePoolError, RankShards, default_chunk_size
from kosim.model import SentenceEncoder

TEXTS = [t * (1 + i % 3) for i, t in enumerate(KOREAN * 3)]  # varied lengths, repeats, many chunks


@pytest.fixture(scope="module")
def model(bert_dir):
    model = SentenceEncoder.load(bert_dir)
    model.prompts = {"query": "질문: "}
    return model


@pytest.fixture(scope="module")
def pool(model):
    with EncodePool(model, ["cpu", "cpu"], threads_per_worker=1) as pool:
        yield pool


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"prompt_name": "query", "normalize": True},
        {"truncate_dim": 8, "batch_size": 3},
        {"precision": "int8"},
        {"precision": "ubinary", "to": "torch"},
    ],
)
def test_pooled_equals_plain(model, pool, kwargs):
    expected = model.encode(TEXTS, **kwargs)
    got = model.encode(TEXTS, pool=pool, chunk_size=4, **kwargs)
    assert type(got) is type(expected) and got.shape == expected.shape and got.dtype == expected.dtype
    if kwargs.get("precision", "float32") == "float32":
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-6, rtol=0)
    else:  # quantized from the same float32 embeddings
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_token_output_and_single_text(model, pool):
    expected = model.encode(TEXTS, output="token")
    got = model.encode(TEXTS, output="token", pool=pool, chunk_size=5)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    np.testing.assert_allclose(model.encode(TEXTS[0], pool=pool), model.encode(TEXTS[0]), atol=1e-6, rtol=0)
    assert model.encode([], pool=pool).shape == (0, model.embedding_dim)


def test_default_chunk_size_splits_work():
    assert default_chunk_size(1000, 2) == 50
    assert default_chunk_size(3, 4) == 1
    assert default_chunk_size(10**8, 1) == 5000


def test_error_in_a_worker_is_raised_and_the_pool_stays_usable(model, pool):
    with pytest.raises(EncodePoolError, match="float16 autocast needs a CUDA device"):
        model.encode(TEXTS, pool=pool, chunk_size=4, dtype="float16")
    np.testing.assert_allclose(model.encode(TEXTS, pool=pool), model.encode(TEXTS), atol=1e-6, rtol=0)


def test_pool_of_another_model_is_refused(pool, bert_dir):
    other = SentenceEncoder.load(bert_dir)
    with pytest.raises(ValueError, match="another model"):
        other.encode(TEXTS, pool=pool)
    with pytest.raises(TypeError, match="pool must be"):
        other.encode(TEXTS, pool={"processes": []})
    with pytest.raises(ValueError, match="not both"):
        other.encode(TEXTS, pool=pool, devices=["cpu"])
    with pytest.raises(TypeError, match="list of devices"):
        EncodePool(other, "cpu")
    with pytest.raises(ValueError, match="invalid device"):
        EncodePool(other, ["cpux"])


def test_temporary_pool_from_devices_and_a_dead_worker(bert_dir):
    model = SentenceEncoder.load(bert_dir)
    np.testing.assert_allclose(
        model.encode(TEXTS[:7], devices=["cpu"], chunk_size=2), model.encode(TEXTS[:7]), atol=1e-6, rtol=0
    )
    pool = EncodePool(model, ["cpu"], threads_per_worker=1)
    try:
        pool.processes[0].kill()
        started = time.monotonic()
        with pytest.raises(EncodePoolError, match="died"):
            model.encode(TEXTS, pool=pool)
        assert time.monotonic() - started < 30
        with pytest.raises(EncodePoolError, match="died"):
            model.encode(TEXTS, pool=pool)
    finally:
        pool.close()
    assert pool.closed and not pool.processes[0].is_alive()
    with pytest.raises(EncodePoolError, match="closed"):
        model.encode(TEXTS, pool=pool)


def test_changed_weights_are_refused(bert_dir):
    model = SentenceEncoder.load(bert_dir)
    with EncodePool(model, ["cpu"], threads_per_worker=1) as pool:
        with torch.no_grad():
            next(model.parameters()).add_(1.0)
        with pytest.raises(EncodePoolError, match="weights changed"):
            model.encode(TEXTS, pool=pool)


def test_changed_tokenizer_settings_are_refused(bert_dir):
    model = SentenceEncoder.load(bert_dir)
    with EncodePool(model, ["cpu"], threads_per_worker=1) as pool:
        started = model.max_seq_length
        model.max_seq_length = 8  # the workers' snapshot still truncates at the old length
        with pytest.raises(EncodePoolError, match="tokenizer settings"):
            model.encode(TEXTS, pool=pool)
        model.max_seq_length = started
        np.testing.assert_allclose(model.encode(TEXTS, pool=pool), model.encode(TEXTS), atol=1e-6, rtol=0)


def test_a_worker_that_cannot_load_fails_the_start(bert_dir, monkeypatch):
    import kosim.encode_pool as encode_pool

    model = SentenceEncoder.load(bert_dir)
    real = encode_pool._worker
    monkeypatch.setattr(encode_pool, "_worker", _broken_worker)
    try:
        with pytest.raises(EncodePoolError, match="could not load the model"):
            EncodePool(model, ["cpu"], threads_per_worker=1)
    finally:
        monkeypatch.setattr(encode_pool, "_worker", real)


def _broken_worker(model_dir, device, threads, jobs, results, worker):
    import kosim.encode_pool as encode_pool

    encode_pool._worker(os.path.join(model_dir, "missing"), device, threads, jobs, results, worker)


def _rank_main(rank: int, world: int, init: str, model_dir: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        model = SentenceEncoder.load(model_dir)
        sentences = model.encode(TEXTS[:11], pool=RankShards(), normalize=True)
        tokens = model.encode(TEXTS[:5], pool=RankShards(), output="token")
        np.save(os.path.join(out, f"rank{rank}.npy"), sentences)
        np.save(os.path.join(out, f"tokens{rank}.npy"), np.concatenate(tokens))
    finally:
        dist.destroy_process_group()


def test_rank_shards_under_a_process_group(bert_dir, tmp_path):
    import torch.multiprocessing as mp

    init = f"file://{tmp_path / 'rendezvous'}"
    mp.start_processes(_rank_main, args=(2, init, str(bert_dir), str(tmp_path)), nprocs=2, start_method="spawn")
    model = SentenceEncoder.load(bert_dir)
    expected = model.encode(TEXTS[:11], normalize=True)
    tokens = np.concatenate(model.encode(TEXTS[:5], output="token"))
    for rank in range(2):
        np.testing.assert_allclose(np.load(tmp_path / f"rank{rank}.npy"), expected, atol=1e-6, rtol=0)
        np.testing.assert_allclose(np.load(tmp_path / f"tokens{rank}.npy"), tokens, atol=1e-6, rtol=0)
    # outside torchrun RankShards is a plain encode
    np.testing.assert_array_equal(model.encode(TEXTS[:3], pool=RankShards()), model.encode(TEXTS[:3]))


def test_mining_and_ir_evaluator_take_the_pool(model, pool):
    from kosim.evaluation import InformationRetrievalEvaluator
    from kosim.mining import mine_hard_negatives

    anchors, positives = KOREAN[:8], [t[::-1] for t in KOREAN[:8]]
    data = {"anchor": anchors, "positive": positives}
    options = {"num_negatives": 2, "range_max": 6, "verbose": False, "output_scores": True}
    pooled, plain = mine_hard_negatives(data, model, pool=pool, **options), mine_hard_negatives(data, model, **options)
    assert list(pooled) == list(plain)
    for column in plain:
        if column == "scores":
            np.testing.assert_allclose(pooled[column], plain[column], atol=1e-6, rtol=0)
        else:
            assert pooled[column] == plain[column], column
    queries = dict(enumerate(anchors))
    corpus = {f"d{i}": t for i, t in enumerate(positives + KOREAN[8:])}
    relevant = {i: {f"d{i}"} for i in queries}
    plain = InformationRetrievalEvaluator(queries, corpus, relevant, name="ir")(model)
    pooled = InformationRetrievalEvaluator(queries, corpus, relevant, name="ir", pool=pool)(model)
    assert list(pooled) == list(plain)
    np.testing.assert_allclose(list(pooled.values()), list(plain.values()), atol=1e-6, rtol=0)


def test_every_evaluator_takes_the_pool(model, pool):
    """STS, binary, triplet and paraphrase evaluators encode through the pool (one pooled call per distinct side)
    with the single-process metrics."""
    from kosim.evaluation import (
        BinaryClassificationEvaluator,
        EmbeddingSimilarityEvaluator,
        ParaphraseMiningEvaluator,
        TripletEvaluator,
    )

    ko = [t for t in KOREAN if not t.isascii()]
    shifted = ko[1:] + ko[:1]
    makers = {
        "sts": lambda **kw: EmbeddingSimilarityEvaluator(ko, shifted, [i % 5 + 0.5 for i in range(len(ko))], **kw),
        "binary": lambda **kw: BinaryClassificationEvaluator(ko, shifted, [i % 2 for i in range(len(ko))], **kw),
        "triplet": lambda **kw: TripletEvaluator(ko, shifted, ko[2:] + ko[:2], **kw),
        "paraphrase": lambda **kw: ParaphraseMiningEvaluator(dict(enumerate(ko)), [(0, 1), (2, 3)], **kw),
    }
    for name, make in makers.items():
        plain = make()(model)
        before = pool._calls
        pooled = make(pool=pool)(model)
        assert pool._calls > before, name  # the encode went through the pool
        assert list(pooled) == list(plain), name
        np.testing.assert_allclose(list(pooled.values()), list(plain.values()), atol=1e-6, rtol=0, err_msg=name)
