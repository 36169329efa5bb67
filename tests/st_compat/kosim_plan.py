"""A batch sampler for sentence-transformers' trainer that yields kosim's BatchSampler plan: the scripts whose
batch orders cannot match (see the test modules) compare with sentence-transformers given kosim's batches."""

from __future__ import annotations

from kosim.data import BatchSampler


class KosimPlan:
    """sentence-transformers' batch-sampler interface (`set_epoch`, `len`, iteration, `batch_size`, `drop_last`)
    over kosim's shuffled plan for the same seed."""

    def __init__(self, dataset, batch_size, drop_last, seed=42, **unused):
        self.plans = BatchSampler(len(dataset), batch_size, drop_last=drop_last, seed=seed)
        self.batch_size, self.drop_last, self.epoch = batch_size, drop_last, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.plans)

    def __iter__(self):
        return iter([rows.tolist() for rows in self.plans.plan(self.epoch)])


def give_sentence_transformers_kosim_batches(monkeypatch):
    """Every batch sampler sentence-transformers' trainer builds (one per dataset) yields kosim's plan."""
    from sentence_transformers.base.trainer import BaseTrainer

    monkeypatch.setattr(BaseTrainer, "get_batch_sampler", lambda self, dataset, **kw: KosimPlan(dataset, **kw))
