"""GroupByLabelBatchSampler: the same batches as sentence-transformers 6.2's, its guarantees, len, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kosim.data.datasets import ColumnDataset
from kosim.data.group_by_label import GroupByLabelBatchSampler, label_groups

datasets = pytest.importorskip("datasets")
from sentence_transformers.base.sampler import GroupByLabelBatchSampler as STGroupByLabel  # noqa: E402


def make_labels(n: int, n_classes: int, seed: int, skew: bool = False) -> list[float]:
    rng = np.random.default_rng(seed)
    p = None
    if skew:
        p = np.arange(1, n_classes + 1, dtype=float) ** 2
        p /= p.sum()
    return [float(x) for x in rng.choice(n_classes, size=n, p=p)]


def kosim_dataset(labels: list[float]) -> ColumnDataset:
    return ColumnDataset({"text": [f"s{i}" for i in range(len(labels))]}, labels=labels)


def st_batches(labels, batch_size, drop_last, seed, epoch) -> list[list[int]]:
    ds = datasets.Dataset.from_dict({"text": [f"s{i}" for i in range(len(labels))], "label": labels})
    sampler = STGroupByLabel(
        ds, batch_size, drop_last, valid_label_columns=["label"], generator=torch.Generator(), seed=seed
    )
    sampler.set_epoch(epoch)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    return batches


CASES = [(200, 5, 16, False), (200, 5, 16, True), (150, 12, 8, False), (97, 3, 4, False), (300, 7, 32, True)]


@pytest.mark.parametrize(("n", "n_classes", "batch_size", "skew"), CASES)
@pytest.mark.parametrize("drop_last", [False, True])
def test_same_batches_as_sentence_transformers(n, n_classes, batch_size, skew, drop_last):
    labels = make_labels(n, n_classes, seed=n, skew=skew)
    sampler = GroupByLabelBatchSampler(kosim_dataset(labels), batch_size, drop_last=drop_last, seed=7)
    for epoch in (0, 1, 3):
        sampler.set_epoch(epoch)
        ours = list(sampler)
        assert ours == st_batches(labels, batch_size, drop_last, seed=7, epoch=epoch)
        assert len(ours) == len(sampler)


@pytest.mark.parametrize(("n", "n_classes", "batch_size", "skew"), CASES)
def test_every_batch_has_two_labels_with_two_rows_each(n, n_classes, batch_size, skew):
    labels = np.asarray(make_labels(n, n_classes, seed=n + 1, skew=skew))
    sampler = GroupByLabelBatchSampler(kosim_dataset(labels.tolist()), batch_size, seed=3)
    seen: list[int] = []
    for batch in sampler:
        _, counts = np.unique(labels[batch], return_counts=True)
        assert counts.size >= 2 and counts.min() >= 2
        assert len(batch) == batch_size or len(batch) >= 4
        seen += batch
    assert len(seen) == len(set(seen))  # no row twice in an epoch


def test_resume_mid_epoch_yields_the_rest():
    labels = make_labels(200, 6, seed=4)
    sampler = GroupByLabelBatchSampler(kosim_dataset(labels), 8, seed=11)
    sampler.set_epoch(2)
    full = list(sampler)
    state = sampler.state_dict(batches_consumed=5)
    resumed = GroupByLabelBatchSampler(kosim_dataset(labels), 8, seed=11)
    resumed.load_state_dict(state)
    assert list(resumed) == full[5:]
    other = GroupByLabelBatchSampler(kosim_dataset(labels), 12, seed=11)
    with pytest.raises(ValueError, match="batch_size"):
        other.load_state_dict(state)


def test_epochs_and_seeds_differ_and_repeat():
    labels = make_labels(120, 4, seed=5)
    a = GroupByLabelBatchSampler(kosim_dataset(labels), 8, seed=0)
    epoch0 = list(a)
    a.set_epoch(1)
    assert list(a) != epoch0
    a.set_epoch(0)
    assert list(a) == epoch0
    assert list(GroupByLabelBatchSampler(kosim_dataset(labels), 8, seed=1)) != epoch0


def test_label_groups_first_appearance_order():
    groups = label_groups(np.array([2.0, 0.0, 2.0, 5.0, 0.0, 7.0, 2.0]))
    assert [g.tolist() for g in groups] == [[0, 2, 6], [1, 4]]


@pytest.mark.parametrize(
    ("labels", "batch_size", "match"),
    [
        (None, 8, "needs a dataset with labels"),
        ([0.0, 0.0, 1.0, 1.0], 6.0, "even number"),
        ([0.0, 0.0, 1.0, 1.0], 6 - 1, "even number"),
        ([0.0, 0.0, 1.0, 1.0], 2, "even number"),
        ([0.0, 0.0, 0.0, 1.0], 4, "at least 2 distinct labels"),
    ],
)
def test_bad_input_raises(labels, batch_size, match):
    dataset = ColumnDataset({"text": ["a", "b", "c", "d"]}, labels=labels)
    with pytest.raises(ValueError, match=match):
        GroupByLabelBatchSampler(dataset, batch_size)
