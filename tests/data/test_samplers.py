"""Samplers: no-duplicate batches, drop_last, determinism, resume, multi-dataset strategies, parity with ST 6.2."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kosim.data.datasets import ColumnDataset
from kosim.data.readers import read_kornli_triplets
from kosim.data.resources import kornli_path
from kosim.data.samplers import BatchSampler, MultiDatasetBatchSampler, NoDuplicatesBatchSampler


@pytest.fixture(scope="module")
def triplets() -> ColumnDataset:
    return read_kornli_triplets(kornli_path())


def row_texts(ds: ColumnDataset, i: int, columns=None) -> list[str]:
    return [ds.column(c)[i] for c in (columns or ds.column_names)]


def assert_no_duplicates(ds: ColumnDataset, batch: list[int], columns=None) -> None:
    texts = [t for i in batch for t in set(row_texts(ds, i, columns))]
    assert len(texts) == len(set(texts))


# -- an independent reference of the ST walk (plain Python, one row at a time) -------------------------------------


def reference_pass(row_sets: list[set], perm: list[int], batch_size: int, drop_last: bool) -> list[list[int]]:
    remaining = list(perm)
    batches = []
    while remaining:
        batch: list[int] = []
        seen: set = set()
        skipped: list[int] = []
        pos = 0
        while pos < len(remaining) and len(batch) < batch_size:
            r = remaining[pos]
            pos += 1
            if seen & row_sets[r]:
                skipped.append(r)
            else:
                batch.append(r)
                seen |= row_sets[r]
        remaining = skipped + remaining[pos:]
        if len(batch) == batch_size or not drop_last:
            batches.append(batch)
    return batches


def reference_epoch(row_sets, batch_size, drop_last, seed, epoch, refill=True) -> list[list[int]]:
    n = len(row_sets)
    g = torch.Generator()
    g.manual_seed(seed + epoch)
    expected = n // batch_size if drop_last else -(-n // batch_size)
    out = reference_pass(row_sets, torch.randperm(n, generator=g).tolist(), batch_size, drop_last)
    if refill and 0 < len(out) < expected:
        for _ in range(2):
            out += reference_pass(row_sets, torch.randperm(n, generator=g).tolist(), batch_size, drop_last)
            if len(out) >= expected:
                return out[:expected]
    return out


small_datasets = st.integers(1, 3).flatmap(
    lambda ncols: st.lists(st.lists(st.integers(0, 25), min_size=ncols, max_size=ncols), min_size=1, max_size=120).map(
        lambda rows: ColumnDataset({f"c{j}": [f"t{r[j]}" for r in rows] for j in range(ncols)})
    )
)


@settings(max_examples=80, deadline=None)
@given(
    ds=small_datasets,
    batch_size=st.integers(1, 12),
    drop_last=st.booleans(),
    refill=st.booleans(),
    seed=st.integers(0, 1000),
    epoch=st.integers(0, 3),
)
def test_no_duplicates_matches_reference_walk(ds, batch_size, drop_last, refill, seed, epoch):
    if drop_last and len(ds) < batch_size:
        with pytest.raises(ValueError, match=f"batch_size={batch_size}.*len={len(ds)}"):
            NoDuplicatesBatchSampler(ds, batch_size, drop_last=drop_last, seed=seed)
        return
    sampler = NoDuplicatesBatchSampler(ds, batch_size, drop_last=drop_last, seed=seed, refill=refill)
    sampler.set_epoch(epoch)
    got = list(sampler)
    row_sets = [set(row_texts(ds, i)) for i in range(len(ds))]
    assert got == reference_epoch(row_sets, batch_size, drop_last, seed, epoch, refill)
    for b in got:
        assert_no_duplicates(ds, b)
        assert not drop_last or len(b) == batch_size


# -- properties on the KorNLI triplets -------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [16, 64, 256])
@pytest.mark.parametrize("drop_last", [False, True])
def test_triplets_no_duplicates_each_row_once(triplets, batch_size, drop_last):
    sampler = NoDuplicatesBatchSampler(triplets, batch_size, drop_last=drop_last, seed=1, refill=False)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        used = [i for b in batches for i in b]
        assert len(used) == len(set(used))
        for b in batches:
            assert_no_duplicates(triplets, b)
        if drop_last:
            assert all(len(b) == batch_size for b in batches)
        else:
            assert sorted(used) == list(range(len(triplets)))
            assert len(batches) >= len(sampler)


def test_refill_tops_up_to_len_like_st(caplog):
    # 10 distinct anchors, each in 10 rows: the end of a pass cannot fill batches of 8, so it falls short of len().
    ds = ColumnDataset({"a": [f"a{i % 10}" for i in range(100)], "p": [f"p{i}" for i in range(100)]})
    sampler = NoDuplicatesBatchSampler(ds, 8, drop_last=True, seed=3)
    strict = NoDuplicatesBatchSampler(ds, 8, drop_last=True, seed=3, refill=False)
    with caplog.at_level(logging.WARNING, logger="kosim.data.samplers"):
        batches = list(sampler)
    first_pass = list(strict)
    used = [i for b in first_pass for i in b]
    assert len(used) == len(set(used))  # refill=False: each row at most once
    assert len(first_pass) < len(sampler) == len(batches) == 12
    assert batches[: len(first_pass)] == first_pass
    assert "extra reshuffled passes" in caplog.text
    for b in batches:
        assert len(b) == 8
        assert_no_duplicates(ds, b)


def test_batch_size_too_large_for_distinct_rows(caplog):
    # 10 rows that all share the anchor: at most one row fits in a batch.
    ds = ColumnDataset({"a": ["same"] * 10, "b": [f"p{i}" for i in range(10)]})
    keep = NoDuplicatesBatchSampler(ds, 4, drop_last=False)
    batches = list(keep)
    assert len(keep) == 3 and len(batches) == 10 and all(len(b) == 1 for b in batches)
    drop = NoDuplicatesBatchSampler(ds, 4, drop_last=True)
    with caplog.at_level(logging.WARNING, logger="kosim.data.samplers"):
        assert list(drop) == []
    assert "too few mutually distinct rows" in caplog.text
    with pytest.raises(ValueError, match="batch_size=11.*len=10"):
        NoDuplicatesBatchSampler(ds, 11, drop_last=True)
    with pytest.raises(ValueError, match="batch_size=11.*len=10"):
        BatchSampler(ds, 11, drop_last=True)


def test_valid_columns_and_labels_do_not_count():
    ds = ColumnDataset({"a": ["x", "y", "x", "z"], "b": ["1", "1", "2", "3"]}, labels=[1.0, 1.0, 1.0, 1.0])
    only_b = NoDuplicatesBatchSampler(ds, 4, valid_columns=["b"])
    for b in only_b:
        assert_no_duplicates(ds, b, ["b"])
    assert max(len(b) for b in only_b) == 3  # rows 0 and 1 share "1"; "x" repeats are allowed
    both = NoDuplicatesBatchSampler(ds, 4)
    assert max(len(b) for b in both) == 2
    with pytest.raises(ValueError, match="did you mean 'b'"):
        NoDuplicatesBatchSampler(ds, 2, valid_columns=["bb"])


def test_tokenized_dataset_gives_same_plan(triplets):
    tokenized = triplets.tokenize(lambda texts: [[len(t)] for t in texts])
    a = NoDuplicatesBatchSampler(triplets, 32, seed=5)
    b = NoDuplicatesBatchSampler(tokenized, 32, seed=5)
    for epoch in range(2):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        assert list(a) == list(b)


def test_determinism_and_epochs(triplets):
    a = NoDuplicatesBatchSampler(triplets, 64, seed=11)
    b = NoDuplicatesBatchSampler(triplets, 64, seed=11)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    c = NoDuplicatesBatchSampler(triplets, 64, seed=12)
    assert list(c) != first


@pytest.mark.parametrize(
    "make",
    [
        lambda ds: NoDuplicatesBatchSampler(ds, 50, seed=4),
        lambda ds: NoDuplicatesBatchSampler(ds, 50, drop_last=True, seed=4),
        lambda ds: BatchSampler(ds, 50, seed=4),
    ],
)
def test_resume_mid_epoch(triplets, make):
    run = make(triplets)
    run.set_epoch(2)
    full = list(run)
    k = 7
    interrupted = make(triplets)
    interrupted.set_epoch(2)
    it = iter(interrupted)
    head = [next(it) for _ in range(k)]
    state = interrupted.state_dict()
    assert state["epoch"] == 2 and state["batches_yielded"] == k and head == full[:k]

    resumed = make(triplets)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # a trainer re-announcing the epoch must not lose the resume point
    assert list(resumed) == full[k:]
    resumed.set_epoch(3)
    nxt = list(resumed)
    run.set_epoch(3)
    assert nxt == list(run)

    lagging = make(triplets)
    lagging.load_state_dict(interrupted.state_dict(batches_consumed=k - 2))
    assert list(lagging) == full[k - 2 :]
    with pytest.raises(ValueError, match="seed"):
        NoDuplicatesBatchSampler(triplets, 50, seed=5).load_state_dict(state)
    with pytest.raises(ValueError, match="batch_size"):
        NoDuplicatesBatchSampler(triplets, 49, seed=4).load_state_dict(state)


def test_planning_is_fast():
    rng = np.random.default_rng(0)
    n = 200_000
    source = np.arange(3 * n)
    dup = rng.random(3 * n) < 0.05
    source[dup] = rng.integers(0, 3 * n, size=int(dup.sum()))
    texts = [f"s{k}" for k in source.tolist()]
    ds = ColumnDataset({"a": texts[0::3], "p": texts[1::3], "n": texts[2::3]})
    sampler = NoDuplicatesBatchSampler(ds, 4096, seed=0)
    t0 = time.perf_counter()
    batches = list(sampler)
    elapsed = time.perf_counter() - t0
    assert sum(len(b) for b in batches) == n
    assert elapsed < 5.0, elapsed


# -- BatchSampler ------------------------------------------------------------------------------------------------------


def test_batch_sampler_basics():
    s = BatchSampler(10, 4, seed=1)
    batches = list(s)
    assert len(s) == 3 and [len(b) for b in batches] == [4, 4, 2]
    assert sorted(i for b in batches for i in b) == list(range(10))
    d = BatchSampler(10, 4, drop_last=True, seed=1)
    assert len(d) == 2 and list(d) == batches[:2]
    assert list(BatchSampler(5, 2, shuffle=False)) == [[0, 1], [2, 3], [4]]
    s.set_epoch(1)
    assert list(s) != batches


# -- multi-dataset -----------------------------------------------------------------------------------------------------


def make_children(triplets, drop_last=False):
    a = triplets.head(700)
    b = triplets.select(np.arange(700, 1000))
    c = triplets.select(np.arange(1000, 1500))
    return [a, b, c], [NoDuplicatesBatchSampler(d, 64, drop_last=drop_last, seed=9) for d in (a, b, c)]


def test_round_robin(triplets):
    datasets, children = make_children(triplets)
    rr = MultiDatasetBatchSampler(children, "round_robin", seed=9)
    out = list(rr)
    rounds = min(len(c.plan()) for c in children)
    assert len(rr) == min(len(c) for c in children) * 3
    assert [i for i, _ in out] == [0, 1, 2] * rounds
    for i, child in enumerate(children):
        assert [b for j, b in out if j == i] == list(child)[:rounds]


def test_proportional(triplets):
    datasets, children = make_children(triplets, drop_last=True)
    prop = MultiDatasetBatchSampler(children, "proportional", seed=9)
    out = list(prop)
    assert len(prop) == len(out) == sum(len(c) for c in children)
    for i, child in enumerate(children):
        assert [b for j, b in out if j == i] == list(child)
    prop.set_epoch(1)
    assert [i for i, _ in list(prop)] != [i for i, _ in out]
    assert all(c.epoch == 1 for c in children)


def test_multi_resume(triplets):
    for strategy in ("round_robin", "proportional"):
        _, children = make_children(triplets)
        full = list(MultiDatasetBatchSampler(children, strategy, seed=2))
        _, children = make_children(triplets)
        m = MultiDatasetBatchSampler(children, strategy, seed=2)
        it = iter(m)
        head = [next(it) for _ in range(5)]
        state = m.state_dict()
        assert len(state["children"]) == 3 and head == full[:5]
        _, children = make_children(triplets)
        m2 = MultiDatasetBatchSampler(children, strategy, seed=2)
        m2.load_state_dict(state)
        assert list(m2) == full[5:]
    with pytest.raises(ValueError, match="round_robin"):
        MultiDatasetBatchSampler(children, "random")


# -- parity with sentence-transformers 6.2 ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def st_sampler():
    pytest.importorskip("datasets")
    return pytest.importorskip("sentence_transformers.base.sampler")


def to_hf(ds: ColumnDataset, with_label: bool = False):
    from datasets import Dataset

    data = {c: ds.column(c) for c in ds.column_names}
    if with_label:
        data["label"] = [1.0] * len(ds)
    return Dataset.from_dict(data)


@pytest.mark.parametrize(("batch_size", "drop_last"), [(32, False), (32, True), (128, True), (500, False)])
def test_no_duplicates_parity_with_st(triplets, st_sampler, batch_size, drop_last):
    hf = to_hf(triplets, with_label=True)
    theirs = st_sampler.NoDuplicatesBatchSampler(
        hf, batch_size, drop_last, valid_label_columns=["label"], generator=torch.Generator(), seed=7
    )
    ours = NoDuplicatesBatchSampler(triplets, batch_size, drop_last=drop_last, seed=7)
    assert len(ours) == len(theirs)
    for epoch in range(3):
        theirs.set_epoch(epoch)
        ours.set_epoch(epoch)
        a, b = list(theirs), list(ours)
        # properties: same number of batches, same rows used, no duplicates, full batches under drop_last
        assert len(a) == len(b)
        assert sorted(i for x in a for i in x) == sorted(i for x in b for i in x)
        assert [len(x) for x in a] == [len(x) for x in b]
        # the same torch draws and the same walk: identical batches
        assert a == b


def test_batch_sampler_parity_with_st(st_sampler):
    from torch.utils.data import RandomSampler

    for epoch in range(2):
        g = torch.Generator()
        g.manual_seed(3 + epoch)
        theirs = list(st_sampler.DefaultBatchSampler(RandomSampler(range(103), generator=g), 10, drop_last=False))
        ours = BatchSampler(103, 10, seed=3)
        ours.set_epoch(epoch)
        assert list(ours) == theirs


def st_multi(st_sampler, cls, datasets, drop_last, seed, epoch):
    from torch.utils.data import ConcatDataset

    hfs = [to_hf(d) for d in datasets]
    g = torch.Generator()
    kids = [st_sampler.NoDuplicatesBatchSampler(h, 64, drop_last, generator=g, seed=seed) for h in hfs]
    multi = cls(ConcatDataset(hfs), kids, generator=g, seed=seed)
    multi.set_epoch(epoch)
    offsets = np.cumsum([0] + [len(d) for d in datasets])
    out = []
    for batch in multi:
        i = int(np.searchsorted(offsets, batch[0], side="right") - 1)
        out.append((i, [x - int(offsets[i]) for x in batch]))
    return out, len(multi)


@pytest.mark.parametrize("drop_last", [False, True])
def test_multi_dataset_parity_with_st(triplets, st_sampler, drop_last):
    for strategy, cls in (
        ("round_robin", st_sampler.RoundRobinBatchSampler),
        ("proportional", st_sampler.ProportionalBatchSampler),
    ):
        for epoch in range(2):
            datasets, children = make_children(triplets, drop_last=drop_last)
            ours = MultiDatasetBatchSampler(children, strategy, seed=9)
            ours.set_epoch(epoch)
            got = list(ours)
            theirs, their_len = st_multi(st_sampler, cls, datasets, drop_last, 9, epoch)
            assert len(ours) == their_len
            assert len(got) == len(theirs)
            assert [i for i, _ in got] == [i for i, _ in theirs]
            if strategy == "round_robin":
                assert [i for i, _ in got] == [0, 1, 2] * (len(got) // 3)
            assert got == theirs
