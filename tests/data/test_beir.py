"""BEIR-format readers: corpus / queries / qrels into evaluator dicts and training pairs, with path:line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kosim.data.beir import beir_training_pairs, load_beir, read_beir_corpus, read_beir_qrels, read_beir_queries
from kosim.data.datasets import DataError

CORPUS = [
    {"_id": "d1", "title": "서울", "text": "서울은 한국의 수도이다."},
    {"_id": "d2", "title": "", "text": "부산은 항구 도시이다. "},
    {"_id": "d3", "text": "제주도는 섬이다."},
    {"_id": 4, "title": "대전", "text": "대전은 과학 도시이다."},
]
QUERIES = [
    {"_id": "q1", "text": "한국의 수도는?"},
    {"_id": "q2", "text": "항구 도시는?"},
    {"_id": "q3", "text": "섬은?"},
    {"_id": "q4", "text": "판정이 없는 질문"},
]
TEST_QRELS = ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\t4\t2", "q2\td2\t1", "q2\td1\t0", "q3\td1\t0"]


def write_beir(root: Path, corpus=CORPUS, queries=QUERIES, qrels=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in corpus), "utf-8")
    (root / "queries.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries), "utf-8")
    (root / "qrels").mkdir(exist_ok=True)
    for split, lines in (qrels or {"test": TEST_QRELS, "train": TEST_QRELS[:2] + ["q2\td2\t1"]}).items():
        (root / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", "utf-8")
    return root


def test_corpus_title_joined_like_mteb_and_int_ids_as_strings(tmp_path):
    root = write_beir(tmp_path / "set")
    corpus = read_beir_corpus(root / "corpus.jsonl")
    assert corpus == {
        "d1": "서울 서울은 한국의 수도이다.",
        "d2": "부산은 항구 도시이다.",
        "d3": "제주도는 섬이다.",
        "4": "대전 대전은 과학 도시이다.",
    }
    assert read_beir_corpus(root / "corpus.jsonl", title_sep=None)["d1"] == "서울은 한국의 수도이다."
    assert read_beir_corpus(root / "corpus.jsonl", title_sep=". ")["4"] == "대전. 대전은 과학 도시이다."
    assert list(read_beir_queries(root / "queries.jsonl")) == ["q1", "q2", "q3", "q4"]


def test_load_beir_keeps_positive_judgements_only(tmp_path):
    task = load_beir(write_beir(tmp_path / "set"), "test")
    assert task.name == "set-test"
    # q3 has only a score-0 judgement and q4 none: neither is a query of the task; d1 is not relevant to q2.
    assert task.queries == {"q1": "한국의 수도는?", "q2": "항구 도시는?"}
    assert task.relevant_docs == {"q1": {"d1", "4"}, "q2": {"d2"}}
    assert len(task.corpus) == 4
    assert read_beir_qrels(tmp_path / "set" / "qrels" / "test.tsv") == {
        "q1": {"d1": 1.0, "4": 2.0},
        "q2": {"d2": 1.0, "d1": 0.0},
        "q3": {"d1": 0.0},
    }
    evaluator = task.evaluator(accuracy_at_k=[1], precision_recall_at_k=[1], map_at_k=[2], mrr_at_k=[2])
    assert evaluator.name == "set-test" and evaluator.query_ids == ["q1", "q2"]


def test_training_pairs(tmp_path):
    pairs = beir_training_pairs(write_beir(tmp_path / "set"), "test")
    assert pairs.column_names == ["query", "positive"]
    assert pairs.column("query") == ["한국의 수도는?", "한국의 수도는?", "항구 도시는?"]
    assert pairs.column("positive") == [
        "대전 대전은 과학 도시이다.",
        "서울 서울은 한국의 수도이다.",
        "부산은 항구 도시이다.",
    ]
    assert len(beir_training_pairs(tmp_path / "set")) == 2  # the "train" split


def _error(tmp_path: Path, **files) -> str:
    root = write_beir(tmp_path / "bad", **files)
    with pytest.raises(DataError) as info:
        load_beir(root, "test")
    return str(info.value)


@pytest.mark.parametrize(
    ("corpus", "expected"),
    [
        (CORPUS[:2] + [{"_id": "d1", "text": "again"}], r"corpus.jsonl:3: duplicate _id 'd1' \(first at .*:1\)"),
        (CORPUS[:1] + [{"text": "no id"}], r"corpus.jsonl:2: '_id' must be a non-empty string, got None"),
        (CORPUS[:1] + [{"_id": "d9", "title": "t"}], r"corpus.jsonl:2: missing key 'text'"),
        (CORPUS[:1] + [{"_id": "d9", "text": 5}], r"corpus.jsonl:2: 'text' must be a string, got int"),
    ],
)
def test_corpus_errors_name_file_and_line(tmp_path, corpus, expected):
    with pytest.raises(DataError, match=expected):
        load_beir(write_beir(tmp_path / "bad", corpus=corpus), "test")


def test_malformed_lines(tmp_path):
    root = write_beir(tmp_path / "set")
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n{"_id": "q2", "text": \n', "utf-8")
    with pytest.raises(DataError, match=r"queries.jsonl:2: invalid JSON"):
        read_beir_queries(root / "queries.jsonl")
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n\n{"_id": "q2", "text": "b"}\n\n', "utf-8")
    with pytest.raises(DataError, match=r"queries.jsonl:2: empty line"):
        read_beir_queries(root / "queries.jsonl")
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "  "}\n', "utf-8")
    with pytest.raises(DataError, match=r"queries.jsonl:1: query 'q1' has no text"):
        read_beir_queries(root / "queries.jsonl")
    (root / "queries.jsonl").write_text('["q1", "a"]\n', "utf-8")
    with pytest.raises(DataError, match=r"queries.jsonl:1: expected a JSON object, got list"):
        read_beir_queries(root / "queries.jsonl")
    (root / "queries.jsonl").write_bytes(b'{"_id": "q1", "text": "\xff"}\n')
    with pytest.raises(DataError, match=r"queries.jsonl:1: not valid UTF-8"):
        read_beir_queries(root / "queries.jsonl")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["q1\td1\t1"], r"test.tsv:1: expected the header query-id<TAB>corpus-id<TAB>score"),
        (TEST_QRELS[:2] + ["q1\td1"], r"test.tsv:3: expected 3 tab-separated fields"),
        (TEST_QRELS[:2] + ["q2\td2\thigh"], r"test.tsv:3: score 'high' is not a number"),
        (TEST_QRELS[:2] + ["q2\td2\tnan"], r"test.tsv:3: score 'nan' is not finite"),
        (TEST_QRELS[:2] + ["q2\t\t1"], r"test.tsv:3: empty corpus-id"),
        (TEST_QRELS[:2] + ["q2\td7\t1"], r"test.tsv:3: corpus-id 'd7' is not in .*corpus.jsonl"),
        (TEST_QRELS[:2] + ["q9\td2\t1"], r"test.tsv:3: query-id 'q9' is not in .*queries.jsonl"),
        (TEST_QRELS[:1], r"test.tsv: no judgements after the header"),
        (TEST_QRELS[:1] + ["q3\td1\t0"], r"test.tsv: no query has a relevant \(score > 0\) document"),
    ],
)
def test_qrels_errors_name_file_and_line(tmp_path, lines, expected):
    with pytest.raises(DataError, match=expected):
        load_beir(write_beir(tmp_path / "bad", qrels={"test": lines}), "test")


def test_conflicting_judgement_and_missing_rows(tmp_path):
    root = write_beir(tmp_path / "set", qrels={"test": TEST_QRELS + ["q1\td1\t0"], "other": TEST_QRELS + ["q1\td7\t1"]})
    with pytest.raises(DataError, match=r"test.tsv:7: \('q1', 'd1'\) judged 0.0 here but 1.0 at .*test.tsv:2"):
        read_beir_qrels(root / "qrels" / "test.tsv")
    with pytest.raises(DataError, match=r"qrels/dev.tsv: no such file; qrels splits in .*: \['other', 'test'\]"):
        load_beir(root, "dev")
    with pytest.raises(DataError, match="corpus-id 'd7'"):
        load_beir(root, "other")
    assert load_beir(root, "other", skip_missing=True).relevant_docs["q1"] == {"d1", "4"}
