"""Vector labels (a list of floats per row): read from TSV / CSV / JSONL with path:line errors, carried through
ColumnDataset, tokenize-once and collate as a [batch, k] float tensor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kosim.data import ColumnDataset, read_table
from kosim.data.collate import collate
from kosim.data.datasets import DataError

SCORES = [[0.9, 0.25, -0.5], [0.75, 0.5, 0.125], [1.0, 0.0, 0.375]]
TEXTS = [("q0", "p0", "n0", "m0"), ("q1", "p1", "n1", "m1"), ("q2", "p2", "n2", "m2")]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(path: Path, scores=SCORES) -> Path:
    keys = ("anchor", "positive", "negative_1", "negative_2")
    lines = [json.dumps({**dict(zip(keys, t)), "scores": s}) for t, s in zip(TEXTS, scores)]
    return write(path, "\n".join(lines) + "\n")


def _tsv_spread(path: Path) -> Path:
    header = "anchor\tpositive\tnegative_1\tnegative_2\tscores_0\tscores_1\tscores_2"
    rows = ["\t".join([*t, *map(str, s)]) for t, s in zip(TEXTS, SCORES)]
    return write(path, "\n".join([header, *rows]) + "\n")


def test_jsonl_list_label_reads_as_rows_by_k(tmp_path):
    ds = read_table(_jsonl(tmp_path / "mined.jsonl"), label="scores")
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert ds.labels.shape == (3, 3) and ds.labels.dtype == np.float64
    np.testing.assert_array_equal(ds.labels, np.array(SCORES))


def test_tsv_spread_scores_columns_read_together(tmp_path):
    ds = read_table(_tsv_spread(tmp_path / "mined.tsv"), label="scores")
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    np.testing.assert_array_equal(ds.labels, np.array(SCORES))


def test_label_list_of_columns_and_json_array_field(tmp_path):
    csv = write(tmp_path / "t.csv", "a,b,s1,s0\nx,y,1.5,2.5\nz,w,3,4\n")
    ds = read_table(csv, label=["s0", "s1"])
    assert ds.column_names == ["a", "b"]
    np.testing.assert_array_equal(ds.labels, [[2.5, 1.5], [4.0, 3.0]])
    tsv = write(tmp_path / "t.tsv", "a\tb\tlabel\nx\ty\t[0.5, 1]\nz\tw\t[2, -3.25]\n")
    np.testing.assert_array_equal(read_table(tsv, label="label").labels, [[0.5, 1.0], [2.0, -3.25]])
    jsonl = write(tmp_path / "t.jsonl", '{"a": "x", "u": 1, "v": 2}\n{"a": "y", "u": 3, "v": 4}\n')
    ds = read_table(jsonl, label=["u", "v"])
    assert ds.column_names == ["a"]
    np.testing.assert_array_equal(ds.labels, [[1.0, 2.0], [3.0, 4.0]])


def test_scalar_labels_unchanged_and_exact_name_wins(tmp_path):
    tsv = write(tmp_path / "t.tsv", "a\tscores\tscores_0\nx\t1\t2\ny\t3\t4\n")
    ds = read_table(tsv, label="scores")
    assert ds.labels.shape == (2,) and ds.labels.tolist() == [1.0, 3.0] and ds.column_names == ["a", "scores_0"]


@pytest.mark.parametrize(
    ("suffix", "text", "match"),
    [
        (
            ".jsonl",
            '{"a": "x", "s": [1, 2]}\n{"a": "y", "s": [1, 2, 3]}\n',
            r"t\.jsonl:2: label 's' has 3 values.*:1\)",
        ),
        (".jsonl", '{"a": "x", "s": [1, 2]}\n{"a": "y", "s": 1}\n', r"t\.jsonl:2: label 's' is one number"),
        (".jsonl", '{"a": "x", "s": [1, "two"]}\n', r"t\.jsonl:1: label column 's\[1\]' has non-numeric value 'two'"),
        (".jsonl", '{"a": "x", "s": []}\n', r"t\.jsonl:1: label column 's' holds an empty list"),
        (".jsonl", '{"a": "x", "s": [1, NaN]}\n', r"t\.jsonl:1: label column 's\[1\]' is not finite"),
        (".tsv", "a\ts_0\ts_1\nx\t1\t2\ny\t1\tbad\n", r"t\.tsv:3: label column 's_1' has non-numeric value 'bad'"),
        (".tsv", "a\ts\nx\t[1, 2]\ny\t[1]\n", r"t\.tsv:3: label 's' has 1 values, but the first row \(.*t\.tsv:2\)"),
        (".tsv", "a\ts\nx\t[1, oops]\n", r"t\.tsv:2: label column 's' has non-numeric value"),
        (".csv", 'a,s\nx,"[1, 2]"\ny,3\n', r"t\.csv:3: label 's' is one number, but the first row"),
    ],
)
def test_bad_vector_labels_name_the_file_and_line(tmp_path, suffix, text, match):
    path = write(tmp_path / f"t{suffix}", text)
    with pytest.raises(DataError, match=match):
        read_table(path, label="s")


def test_missing_label_columns_are_named(tmp_path):
    tsv = write(tmp_path / "t.tsv", "a\tu\nx\t1\n")
    with pytest.raises(DataError, match=r"t\.tsv:1: label column 'v' not found"):
        read_table(tsv, label=["u", "v"])
    jsonl = write(tmp_path / "t.jsonl", '{"a": "x", "u": 1}\n{"a": "y"}\n')
    with pytest.raises(DataError, match=r"t\.jsonl:2: missing label key 'u'"):
        read_table(jsonl, label="u")


def test_in_memory_vector_labels_and_their_errors():
    ds = ColumnDataset({"a": ["x", "y"]}, labels=[[1.0, 2.0], [3.0, 4.0]])
    assert ds.labels.shape == (2, 2)
    assert ds.rows(1) == [{"a": "x", "label": [1.0, 2.0]}]
    assert ds.select([1, 1]).labels.tolist() == [[3.0, 4.0], [3.0, 4.0]]
    with pytest.raises(ValueError, match=r"label at index 1 has 1 values, but label 0 has 2 \(ragged"):
        ColumnDataset({"a": ["x", "y"]}, labels=[[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match=r"label at index \(1, 0\) is not finite"):
        ColumnDataset({"a": ["x", "y"]}, labels=[[1.0, 2.0], [float("inf"), 1.0]])
    with pytest.raises(ValueError, match="3 labels for 2 rows"):
        ColumnDataset({"a": ["x", "y"]}, labels=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"\[rows, k >= 1\]"):
        ColumnDataset({"a": ["x", "y"]}, labels=np.zeros((2, 2, 2)))


def test_tokenize_and_collate_carry_a_batch_by_k_tensor(tmp_path):
    ds = read_table(_jsonl(tmp_path / "mined.jsonl"), label="scores")
    tok = ds.tokenize(lambda texts: [[ord(c) for c in t] for t in texts])
    assert tok.labels.shape == (3, 3) and tok.labels.dtype == np.float32
    batch = collate(tok, [2, 0])
    assert tuple(batch.labels.shape) == (2, 3)
    np.testing.assert_array_equal(batch.labels.numpy(), np.array([SCORES[2], SCORES[0]], dtype=np.float32))
