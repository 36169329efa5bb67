"""Retrieval tasks: queries, a corpus and relevance sets, and the bundled Korean task built from KorNLI.

A :class:`RetrievalTask` holds the three dicts that :class:`kosim.evaluation.InformationRetrievalEvaluator`
takes, turns into ``(query, positive)`` training pairs, and splits its queries into seeded train / dev parts that
share the corpus. :func:`kornli_retrieval_task` builds one offline from the bundled KorNLI dev file: each premise
is a query, its entailed hypotheses are the relevant documents, and every distinct hypothesis (entailment, neutral
and contradiction) is in the corpus, so the neutral and contradicting hypotheses written for the same premise are
the hard distractors.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kosim.data.datasets import ColumnDataset, DataError
from kosim.data.readers import NLI_LABELS
from kosim.data.resources import kornli_path

__all__ = ["RetrievalTask", "kornli_retrieval_task"]

SPLITS = ("all", "train", "dev")


@dataclass(frozen=True)
class RetrievalTask:
    """``queries {qid: text}``, ``corpus {cid: text}`` and ``relevant_docs {qid: set of cids}``, with a name.

    Every query has at least one relevant document and every relevant id is a corpus id (readers check this).
    """

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant_docs: dict[str, set[str]]
    name: str = "retrieval"

    def as_dicts(self) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
        """``(queries, corpus, relevant_docs)``: the evaluator's first three arguments."""
        return self.queries, self.corpus, self.relevant_docs

    def pairs(self, name: str | None = None) -> ColumnDataset:
        """``(query, positive)`` training rows: one per relevant document, queries in order, ids ascending."""
        queries: list[str] = []
        positives: list[str] = []
        for qid, text in self.queries.items():
            for cid in sorted(self.relevant_docs[qid]):
                queries.append(text)
                positives.append(self.corpus[cid])
        return ColumnDataset({"query": queries, "positive": positives}, name=name if name is not None else self.name)

    def split(self, dev_size: float | int = 0.5, seed: int = 42) -> tuple[RetrievalTask, RetrievalTask]:
        """``(train, dev)``: disjoint query sets (a seeded shuffle picks the dev ones), the full corpus in both.

        ``dev_size`` is a fraction in ``(0, 1)`` or a number of queries; each part keeps at least one query. Within
        a part, queries keep their original order.
        """
        n = len(self.queries)
        if n < 2:
            raise ValueError(f"cannot split a task with {n} query into train and dev")
        if isinstance(dev_size, bool) or not isinstance(dev_size, (int, float)):
            raise TypeError(f"dev_size must be a fraction or a number of queries, got {dev_size!r}")
        if isinstance(dev_size, float):
            if not 0.0 < dev_size < 1.0:
                raise ValueError(f"dev_size as a fraction must be in (0, 1), got {dev_size}")
            n_dev = min(max(round(dev_size * n), 1), n - 1)
        else:
            if not 1 <= dev_size <= n - 1:
                raise ValueError(f"dev_size must be between 1 and {n - 1} queries, got {dev_size}")
            n_dev = dev_size
        ids = list(self.queries)
        random.Random(seed).shuffle(ids)
        dev_ids = set(ids[:n_dev])
        return self._subset(lambda q: q not in dev_ids, "train"), self._subset(lambda q: q in dev_ids, "dev")

    def _subset(self, keep: Any, suffix: str) -> RetrievalTask:
        queries = {qid: text for qid, text in self.queries.items() if keep(qid)}
        relevant = {qid: set(self.relevant_docs[qid]) for qid in queries}
        return RetrievalTask(queries, self.corpus, relevant, f"{self.name}-{suffix}")

    def evaluator(self, **kwargs: Any):
        """An :class:`~kosim.evaluation.information_retrieval.InformationRetrievalEvaluator` on this task
        (``name`` defaults to the task's); keyword arguments go to its constructor."""
        from kosim.evaluation.information_retrieval import InformationRetrievalEvaluator

        kwargs.setdefault("name", self.name)
        return InformationRetrievalEvaluator(self.queries, self.corpus, self.relevant_docs, **kwargs)

    def __repr__(self) -> str:
        n_rel = sum(len(v) for v in self.relevant_docs.values())
        return (
            f"RetrievalTask(name={self.name!r}, queries={len(self.queries)}, corpus={len(self.corpus)}, "
            f"relevant={n_rel})"
        )


def _ids(prefix: str, count: int) -> list[str]:
    """``prefix`` + zero-padded index, so the ids sort as strings in their numeric order."""
    width = len(str(max(count - 1, 0)))
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def kornli_retrieval_task(
    split: str = "all",
    dev_size: float | int = 0.5,
    seed: int = 42,
    path: str | Path | None = None,
) -> RetrievalTask:
    """The bundled Korean retrieval task: KorNLI premises as queries, their entailed hypotheses as the relevant docs.

    The corpus is every distinct hypothesis of the file (all three labels; texts stripped, duplicates merged), so
    each query competes with the neutral and contradicting hypotheses written for its own premise. Ids are
    ``q000`` ... (premises in first-seen order) and ``d0000`` ... (hypotheses in first-seen order). On the bundled
    dev file: 830 queries, 2489 documents, one relevant document each.

    Args:
        split: ``"all"`` queries, or the ``"train"`` / ``"dev"`` part of :meth:`RetrievalTask.split`
            ``(dev_size, seed)``, so a recipe trains on some queries and evaluates on the others.
        dev_size, seed: the split's dev fraction (or count) and shuffle seed.
        path: a KorNLI-format tsv (``sentence1``, ``sentence2``, ``gold_label``); the bundled dev file by default.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    source = Path(path) if path is not None else kornli_path("dev")
    table = ColumnDataset.from_tsv(source, columns=["sentence1", "sentence2", "gold_label"])
    premises: dict[str, list[str]] = {}  # premise -> entailed hypotheses, in file order
    hypotheses: dict[str, None] = {}
    for row, (premise, hypothesis, label) in enumerate(
        zip(table.column("sentence1"), table.column("sentence2"), table.column("gold_label"))
    ):
        premise, hypothesis, label = premise.strip(), hypothesis.strip(), label.strip()
        if label not in NLI_LABELS:
            # Rows map 1:1 to the lines after the header (the reader rejects interior blank lines).
            raise DataError(f"{source}:{row + 2}: unknown gold_label {label!r}; expected one of {list(NLI_LABELS)}")
        entailed = premises.setdefault(premise, [])
        hypotheses.setdefault(hypothesis, None)
        if label == "entailment" and hypothesis not in entailed:
            entailed.append(hypothesis)
    doc_ids = dict(zip(hypotheses, _ids("d", len(hypotheses))))
    with_positive = [p for p, entailed in premises.items() if entailed]
    if not with_positive:
        raise DataError(f"{source}: no premise has an entailed hypothesis")
    query_ids = _ids("q", len(with_positive))
    task = RetrievalTask(
        queries=dict(zip(query_ids, with_positive)),
        corpus={cid: text for text, cid in doc_ids.items()},
        relevant_docs={qid: {doc_ids[h] for h in premises[p]} for qid, p in zip(query_ids, with_positive)},
        name="kornli-retrieval",
    )
    if split == "all":
        return task
    train, dev = task.split(dev_size, seed)
    return train if split == "train" else dev
