"""The no-duplicates sampler's plan check (issue 14, defect 11): all-duplicate data must not train on nothing."""

from __future__ import annotations

import logging

import pytest

from kosim.data import ColumnDataset, DataError, MultiDatasetBatchSampler, NoDuplicatesBatchSampler

LOGGER = "kosim.data.samplers"


def identical(n: int = 40) -> ColumnDataset:
    return ColumnDataset({"anchor": ["같은 문장"] * n, "positive": ["같은 답"] * n})


def distinct(n: int = 40) -> ColumnDataset:
    return ColumnDataset({"anchor": [f"a{i}" for i in range(n)], "positive": [f"p{i}" for i in range(n)]})


def test_all_duplicates_without_drop_last_is_an_error_with_the_numbers():
    sampler = NoDuplicatesBatchSampler(identical(), 8, seed=1, min_batch_rows=2)
    with pytest.raises(DataError) as err:
        list(sampler)
    msg = str(err.value)
    assert "epoch 0 of 40 rows gives 40 batches of at most 1 rows" in msg
    assert "batch_size=8" in msg and "at least 2 rows" in msg and "['anchor', 'positive']" in msg


def test_all_duplicates_with_drop_last_is_an_error_not_zero_steps():
    sampler = NoDuplicatesBatchSampler(identical(), 8, drop_last=True, seed=1, min_batch_rows=2)
    with pytest.raises(DataError, match=r"epoch 0 of 40 rows gives no batch at all \(batch_size=8, drop_last=True"):
        sampler.plan()


def test_the_check_is_opt_in_and_changes_no_batches(caplog):
    # Without min_batch_rows the sampler yields what the data allows (as sentence-transformers does) ...
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        plain = list(NoDuplicatesBatchSampler(identical(), 8, seed=1))
    assert len(plain) == 40 and all(len(b) == 1 for b in plain)
    # ... but says clearly that the batches shrank, with the numbers.
    assert "epoch 0 has 40 batches where 5 were expected, 1.0 rows each on average (largest 1; batch_size=8" in (
        caplog.text
    )
    # Data that can form useful batches plans exactly as before, check or not, and logs nothing.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        checked = NoDuplicatesBatchSampler(distinct(), 8, seed=3, min_batch_rows=2)
        unchecked = NoDuplicatesBatchSampler(distinct(), 8, seed=3)
        for epoch in range(3):
            checked.set_epoch(epoch)
            unchecked.set_epoch(epoch)
            assert list(checked) == list(unchecked)
    assert caplog.text == ""


def test_heavy_shrinkage_warns_once_but_is_not_an_error(caplog):
    # Two distinct anchors: every batch holds 2 rows (useful, but a quarter of the requested 8).
    ds = ColumnDataset({"anchor": ["x", "y"] * 20, "positive": [f"p{i}" for i in range(40)]})
    sampler = NoDuplicatesBatchSampler(ds, 8, seed=0, min_batch_rows=2)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for epoch in range(3):
            sampler.set_epoch(epoch)
            batches = list(sampler)
            assert len(batches) == 20 and all(len(b) == 2 for b in batches)
    assert caplog.text.count("batches shrink") == 1
    assert "epoch 0 has 20 batches where 5 were expected, 2.0 rows each on average (largest 2" in caplog.text


def test_small_datasets_and_batch_size_one_are_not_flagged(caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        # fewer rows than a batch: one short batch is what any sampler gives, not shrinkage from duplicates
        assert [len(b) for b in NoDuplicatesBatchSampler(distinct(3), 8, min_batch_rows=2)] == [3]
        # batch_size 1 asks for 1-row batches, so 1-row batches are useful
        assert len(list(NoDuplicatesBatchSampler(identical(5), 1, min_batch_rows=2))) == 5
    assert caplog.text == ""


def test_a_multi_dataset_plan_reports_the_degenerate_child():
    multi = MultiDatasetBatchSampler(
        [
            NoDuplicatesBatchSampler(distinct(), 8, min_batch_rows=2),
            NoDuplicatesBatchSampler(identical(), 8, min_batch_rows=2),
        ]
    )
    with pytest.raises(DataError, match="40 batches of at most 1 rows"):
        list(multi)


@pytest.mark.parametrize("bad", [0, -1, True])
def test_min_batch_rows_is_checked(bad):
    with pytest.raises(ValueError, match="min_batch_rows"):
        NoDuplicatesBatchSampler(distinct(), 8, min_batch_rows=bad)
