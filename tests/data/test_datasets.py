"""ColumnDataset / TokenizedDataset: validation, file readers with path:line errors, tokenize-once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from kosim.data.datasets import ColumnDataset, DataError, TokenizedColumn, TokenizedDataset


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- in-memory construction -------------------------------------------------------------------------------------------


def test_basic_access_and_select():
    ds = ColumnDataset({"a": ["x", "y", "z"], "b": ["1", "2", "3"]}, labels=[0.1, 0.2, 0.3], name="toy")
    assert len(ds) == 3 and ds.column_names == ["a", "b"] and ds.num_columns == 2
    assert ds.column("b") == ["1", "2", "3"]
    sub = ds.select([2, 0, 2])
    assert sub.column("a") == ["z", "x", "z"] and sub.labels.tolist() == [0.3, 0.1, 0.3] and sub.name == "toy"
    assert ds.head(2).column("a") == ["x", "y"] and len(ds.head(10)) == 3
    assert ds.rows(1) == [{"a": "x", "b": "1", "label": 0.1}]
    with pytest.raises(IndexError, match="3"):
        ds.select([3])
    with pytest.raises(KeyError, match="did you mean 'a'"):
        ds.column("aa")


def test_validation_errors():
    with pytest.raises(ValueError, match="at least one"):
        ColumnDataset({})
    with pytest.raises(ValueError, match=r"'b' has 1 rows but column 'a' has 2"):
        ColumnDataset({"a": ["x", "y"], "b": ["z"]})
    with pytest.raises(TypeError, match=r"column 'b', row 1"):
        ColumnDataset({"a": ["x", "y"], "b": ["z", 3]})
    with pytest.raises(ValueError, match="index 1"):
        ColumnDataset({"a": ["x", "y"]}, labels=[1.0, float("nan")])
    with pytest.raises(ValueError, match="index 0"):
        ColumnDataset({"a": ["x"]}, labels=np.array([np.inf]))
    with pytest.raises(ValueError, match="2 labels for 1 rows"):
        ColumnDataset({"a": ["x"]}, labels=[1.0, 2.0])


def test_text_ids_shared_across_columns():
    ds = ColumnDataset({"a": ["p", "q", "p"], "b": ["q", "r", "s"], "c": ["s", "p", "t"]})
    a, b, c = ds.text_ids
    texts = [t for col in ds.column_names for t in ds.column(col)]
    ids = np.concatenate([a, b, c])
    for i, ti in enumerate(texts):
        for j, tj in enumerate(texts):
            assert (ids[i] == ids[j]) == (ti == tj)
    assert ds.num_unique_texts == 5 and a.dtype == np.int64


# -- tokenize --------------------------------------------------------------------------------------------------------


def test_tokenize_once_per_text_and_bounded_chunks():
    calls: list[list[str]] = []

    def tok(texts: list[str]) -> list[list[int]]:
        calls.append(list(texts))
        return [[ord(ch) for ch in t] for t in texts]

    ds = ColumnDataset({"a": ["ab", "c", "ab", "de"], "b": ["c", "fgh", "ab", "ij"]}, labels=[0, 1, 2, 3], name="n")
    td = ds.tokenize(tok, batch_size=2)
    seen = [t for chunk in calls for t in chunk]
    assert sorted(seen) == sorted(set(seen)) == sorted({"ab", "c", "de", "fgh", "ij"})
    assert max(len(c) for c in calls) <= 2
    assert isinstance(td, TokenizedDataset) and len(td) == 4 and td.num_columns == 2 and td.name == "n"
    assert td.labels.dtype == np.float32 and td.labels.tolist() == [0, 1, 2, 3]
    for name in ds.column_names:
        col = td.column(name)
        assert col.ids.dtype == np.int32 and col.offsets.dtype == np.int64 and col.text_ids.dtype == np.int64
        assert col.lengths.tolist() == [len(t) for t in ds.column(name)]
        for i, text in enumerate(ds.column(name)):
            assert col[i].tolist() == [ord(ch) for ch in text]
    # equal texts, equal text ids, across columns
    assert td.column("a").text_ids[0] == td.column("b").text_ids[2] == td.column("a").text_ids[2]
    assert td.column("a").text_ids[1] == td.column("b").text_ids[0]
    assert [t.tolist() for t in td.text_ids] == [t.tolist() for t in ds.text_ids]


def test_tokenize_rejects_wrong_result_count():
    ds = ColumnDataset({"a": ["x", "y"]})
    with pytest.raises(ValueError, match="1 results for 2 texts"):
        ds.tokenize(lambda texts: [[1]])


def test_tokenized_column_validation():
    with pytest.raises(ValueError, match="offsets"):
        TokenizedColumn(np.array([1, 2, 3]), np.array([0, 2]))
    with pytest.raises(ValueError, match="text_ids"):
        TokenizedColumn(np.array([1, 2]), np.array([0, 1, 2]), text_ids=np.array([0]))
    col = TokenizedColumn([5, 6, 7], [0, 0, 3])
    assert len(col) == 2 and col[0].tolist() == [] and col[-1].tolist() == [5, 6, 7]
    with pytest.raises(ValueError, match="rows"):
        TokenizedDataset([col, TokenizedColumn([1], [0, 1])], ["a", "b"])
    with pytest.raises(ValueError, match="no text_ids"):
        TokenizedDataset([col], ["a"]).text_ids  # noqa: B018


# -- file readers --------------------------------------------------------------------------------------------------


def test_from_tsv_select_rename_and_quotes(tmp_path):
    p = write(tmp_path / "t.tsv", 'id\ttext\tother\tscore\n1\t"quoted" text\tx\t0.5\n2\tb"c\ty\t1\n')
    ds = ColumnDataset.from_tsv(p, columns={"text": "anchor", "other": "positive"}, label="score")
    assert ds.column_names == ["anchor", "positive"] and ds.name == "t"
    assert ds.column("anchor") == ['"quoted" text', 'b"c'] and ds.labels.tolist() == [0.5, 1.0]
    everything = ColumnDataset.from_tsv(p, label="score", name="x")
    assert everything.column_names == ["id", "text", "other"] and everything.name == "x"


def test_from_tsv_crlf_bom_and_trailing_blank_lines(tmp_path):
    p = tmp_path / "w.tsv"
    p.write_bytes("\ufeffa\tb\r\nx\ty\r\n\r\n\n".encode())
    ds = ColumnDataset.from_tsv(p)
    assert ds.column_names == ["a", "b"] and ds.column("b") == ["y"]


@pytest.mark.parametrize(
    ("content", "line", "pattern"),
    [
        ("a\tb\tscore\nx\ty\t1\nx\ty\n", 3, "expected 3 fields"),
        ("a\tb\tscore\nx\ty\tabc\n", 2, "non-numeric"),
        ("a\tb\tscore\nx\ty\t1\nx\ty\tnan\n", 3, "not finite"),
        ("a\tb\tscore\nx\ty\tinf\n", 2, "not finite"),
        ("a\tb\tscore\nx\ty\t1\nx\t  \t1\n", 3, "empty text in column 'b'"),
        ("a\tb\tscore\nx\t\t1\n", 2, "empty text"),
        ("a\tb\tscore\nx\ty\t1\n\nx\ty\t1\n", 3, "empty line"),
    ],
)
def test_from_tsv_bad_rows_name_path_and_line(tmp_path, content, line, pattern):
    p = write(tmp_path / "bad.tsv", content)
    with pytest.raises(DataError, match=pattern) as err:
        ColumnDataset.from_tsv(p, columns=["a", "b"], label="score")
    assert str(err.value).startswith(f"{p}:{line}: ")


def test_from_tsv_unknown_column_suggests(tmp_path):
    p = write(tmp_path / "h.tsv", "sentence1\tsentence2\tscore\nx\ty\t1\n")
    with pytest.raises(DataError) as err:
        ColumnDataset.from_tsv(p, columns=["sentence1", "sentnce2"], label="score")
    msg = str(err.value)
    assert msg.startswith(f"{p}:1: ") and "'sentnce2'" in msg
    assert "['sentence1', 'sentence2', 'score']" in msg and "did you mean 'sentence2'" in msg
    with pytest.raises(DataError, match="label column 'scor' not found.*did you mean 'score'"):
        ColumnDataset.from_tsv(p, columns=["sentence1"], label="scor")


def test_empty_files(tmp_path):
    empty = write(tmp_path / "empty.tsv", "")
    with pytest.raises(DataError, match=re.escape(f"{empty}: empty file")):
        ColumnDataset.from_tsv(empty)
    header_only = write(tmp_path / "header.tsv", "a\tb\n")
    with pytest.raises(DataError, match=re.escape(f"{header_only}: no data rows")):
        ColumnDataset.from_tsv(header_only)
    with pytest.raises(DataError, match=re.escape(f"{empty}: empty file")):
        ColumnDataset.from_csv(empty)
    with pytest.raises(DataError, match=re.escape(f"{empty}: empty file")):
        ColumnDataset.from_jsonl(empty, ["a"])


def test_from_csv_quoting_and_record_start_lines(tmp_path):
    p = write(tmp_path / "c.csv", 'q,d,label\n"a, b","multi\nline",1\nx,y,2\nx,,3\n')
    with pytest.raises(DataError, match="empty text in column 'd'") as err:
        ColumnDataset.from_csv(p, columns=["q", "d"], label="label")
    assert str(err.value).startswith(f"{p}:5: ")
    p2 = write(tmp_path / "c2.csv", 'q,d,label\n"a, b","multi\nline",1\nx,y,2\n')
    ds = ColumnDataset.from_csv(p2, columns=["q", "d"], label="label")
    assert ds.column("q") == ["a, b", "x"] and ds.column("d") == ["multi\nline", "y"]
    p3 = write(tmp_path / "c3.csv", "q,d\nx,y,z\n")
    with pytest.raises(DataError, match="expected 2 fields") as err:
        ColumnDataset.from_csv(p3)
    assert str(err.value).startswith(f"{p3}:2: ")


def test_from_jsonl(tmp_path):
    lines = [{"q": "a", "p": "b", "s": 1}, {"q": "c", "p": "d", "s": "0.5"}]
    p = write(tmp_path / "j.jsonl", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n")
    ds = ColumnDataset.from_jsonl(p, {"q": "anchor", "p": "positive"}, label="s")
    assert ds.column_names == ["anchor", "positive"] and ds.labels.tolist() == [1.0, 0.5]
    assert ColumnDataset.from_jsonl(p, label="s").column_names == ["q", "p"]

    cases = [
        ('{"q": "a", "p": "b"}\n{"q": "a"}\n', "missing key 'p'"),
        ('{"q": "a", "p": "b"}\n{"q": "a", "pp": "b"}\n', "did you mean 'pp'"),
        ('{"q": "a", "p": "b"}\n{"q": "a", "p": 3}\n', "must hold text"),
        ('{"q": "a", "p": "b"}\n{"q": "a", "p": " "}\n', "empty text"),
        ('{"q": "a", "p": "b"}\n{"q": "a", "p": "b"\n', "invalid JSON"),
        ('{"q": "a", "p": "b"}\n[1]\n', "JSON object"),
    ]
    for i, (content, pattern) in enumerate(cases):
        bad = write(tmp_path / f"bad{i}.jsonl", content)
        with pytest.raises(DataError, match=pattern) as err:
            ColumnDataset.from_jsonl(bad, ["q", "p"])
        assert str(err.value).startswith(f"{bad}:2: ")
    bad_label = write(tmp_path / "bl.jsonl", '{"q": "a", "s": 1}\n{"q": "b", "s": NaN}\n')
    with pytest.raises(DataError, match="not finite") as err:
        ColumnDataset.from_jsonl(bad_label, ["q"], label="s")
    assert str(err.value).startswith(f"{bad_label}:2: ")
