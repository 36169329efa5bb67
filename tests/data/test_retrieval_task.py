"""The bundled KorNLI retrieval task: sizes, ids, relevance, determinism and a disjoint seeded split."""

from __future__ import annotations

import pytest

from kosim.data import kornli_path
from kosim.data.datasets import DataError
from kosim.data.retrieval_task import RetrievalTask, kornli_retrieval_task


def _rows() -> list[list[str]]:
    lines = kornli_path("dev").read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines[1:]]


def test_sizes_ids_and_relevance_from_the_file():
    task = kornli_retrieval_task()
    rows = _rows()
    premises = list(dict.fromkeys(r[0].strip() for r in rows))
    hypotheses = list(dict.fromkeys(r[1].strip() for r in rows))
    assert (len(task.queries), len(task.corpus)) == (830, 2489) == (len(premises), len(hypotheses))
    assert list(task.queries) == [f"q{i:03d}" for i in range(830)] and list(task.queries.values()) == premises
    assert list(task.corpus) == [f"d{i:04d}" for i in range(2489)] and list(task.corpus.values()) == hypotheses
    entailed = {(r[0].strip(), r[1].strip()) for r in rows if r[2] == "entailment"}
    got = {(task.queries[q], task.corpus[c]) for q, rel in task.relevant_docs.items() for c in rel}
    assert got == entailed
    pairs = task.pairs()
    assert len(pairs) == 830 and set(zip(pairs.column("query"), pairs.column("positive"))) == entailed


def test_split_is_seeded_disjoint_and_shares_the_corpus():
    train, dev = kornli_retrieval_task("train", dev_size=0.25, seed=7), kornli_retrieval_task("dev", 0.25, 7)
    assert (len(train.queries), len(dev.queries)) == (622, 208)
    assert not set(train.queries) & set(dev.queries)
    assert set(train.queries) | set(dev.queries) == set(kornli_retrieval_task().queries)
    assert train.corpus == dev.corpus and len(dev.corpus) == 2489
    assert list(dev.queries) == sorted(dev.queries)  # original order kept within a part
    again = kornli_retrieval_task("dev", dev_size=0.25, seed=7)
    assert again == dev and again.name == "kornli-retrieval-dev"
    assert kornli_retrieval_task("dev", dev_size=0.25, seed=8).queries != dev.queries
    assert len(kornli_retrieval_task("dev", dev_size=100).queries) == 100


def test_bad_arguments_and_files(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        kornli_retrieval_task("test")
    with pytest.raises(ValueError, match=r"dev_size as a fraction must be in \(0, 1\)"):
        kornli_retrieval_task("dev", dev_size=1.0)
    with pytest.raises(ValueError, match="dev_size must be between 1 and 829"):
        kornli_retrieval_task("dev", dev_size=830)
    bad = tmp_path / "nli.tsv"
    bad.write_text("sentence1\tsentence2\tgold_label\na\tb\tentailment\nc\td\tmaybe\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"nli.tsv:3: unknown gold_label 'maybe'"):
        kornli_retrieval_task(path=bad)
    bad.write_text("sentence1\tsentence2\tgold_label\na\tb\tneutral\n", encoding="utf-8")
    with pytest.raises(DataError, match="no premise has an entailed hypothesis"):
        kornli_retrieval_task(path=bad)
    with pytest.raises(ValueError, match="cannot split a task with 1 query"):
        RetrievalTask({"q": "a"}, {"d": "b"}, {"q": {"d"}}).split()
