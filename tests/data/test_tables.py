"""read_table (the one format -> reader table) and the line named for an invalid UTF-8 byte in every format."""

from __future__ import annotations

import json
import re

import pytest

from kosim.data import TABLE_FORMATS, TABLE_SUFFIXES, ColumnDataset, DataError, read_table


def _rows_with_a_bad_byte(n_lines: int, bad_line: int, sep: str, quoted_every: int) -> bytes:
    """A headed two-column table of ``n_lines`` physical lines, an invalid byte on line ``bad_line``.

    Every ``quoted_every``-th record (CSV only) holds a quoted field spanning two lines, so records and lines differ.
    """
    lines = [f"text{sep}other".encode()]
    records = 0
    while len(lines) < n_lines:
        lineno = len(lines) + 1
        filler = "가나다라마바사" * 3  # multi-byte text, so block reads split lines at odd places
        if quoted_every and records % quoted_every == 0 and lineno + 1 < bad_line:
            lines.append(f'"first half {filler}'.encode())
            lines.append(f'second half"{sep}row {records} {filler}'.encode())
        else:
            text = f"row {records} {filler}".encode()
            if lineno == bad_line:
                text = text[:5] + b"\xff" + text[5:]
            lines.append(text + f"{sep}x{records}".encode())
        records += 1
    return b"\n".join(lines) + b"\n"


def test_csv_names_the_line_of_an_invalid_utf8_byte_late_in_a_long_file(tmp_path):
    # Before the fix the csv reader blamed an earlier record: the text layer decodes 8 KiB blocks ahead of the parser.
    data = _rows_with_a_bad_byte(n_lines=300, bad_line=252, sep=",", quoted_every=5)
    p = tmp_path / "late.csv"
    p.write_bytes(data)
    assert data.split(b"\n")[251].find(b"\xff") > 0 and data.count(b"\n") == 300
    with pytest.raises(DataError, match=re.escape(f"{p}:252: not valid UTF-8")):
        ColumnDataset.from_csv(p)


@pytest.mark.parametrize("fmt", ["tsv", "jsonl"])
def test_other_formats_name_the_line_of_an_invalid_utf8_byte(tmp_path, fmt):
    text = "가나다라마바사" * 2
    lines = [json.dumps({"text": f"row {i} {text}"}) if fmt == "jsonl" else f"row {i} {text}\tx" for i in range(299)]
    header = [] if fmt == "jsonl" else ["text\tother"]
    raw = [s.encode() for s in header + lines]
    raw[251] = raw[251][:5] + b"\xff" + raw[251][5:]
    p = tmp_path / f"late.{fmt}"
    p.write_bytes(b"\n".join(raw) + b"\n")
    with pytest.raises(DataError, match=re.escape(f"{p}:252: not valid UTF-8")):
        read_table(p)


def test_read_table_picks_the_reader_by_suffix_or_format(tmp_path):
    assert TABLE_FORMATS == ("tsv", "csv", "jsonl") and TABLE_SUFFIXES == (".tsv", ".csv", ".jsonl")
    (tmp_path / "a.tsv").write_text('q\tp\ts\n"x\ty\t1\n', encoding="utf-8")
    (tmp_path / "a.CSV").write_text('q,p,s\n"x, z",y,1\n', encoding="utf-8")
    (tmp_path / "a.jsonl").write_text('{"q": "x", "p": "y", "s": 1}\n', encoding="utf-8")
    tsv = read_table(tmp_path / "a.tsv", ["q", "p"], label="s")
    assert tsv.column("q") == ['"x'] and tsv.labels.tolist() == [1.0] and tsv.name == "a"  # TSV: no quoting
    assert read_table(tmp_path / "a.CSV", {"q": "anchor"}, name="n").column("anchor") == ["x, z"]
    assert read_table(str(tmp_path / "a.jsonl"), label="s").column_names == ["q", "p"]
    (tmp_path / "b.txt").write_text("q,p\nx,y\n", encoding="utf-8")
    assert read_table(tmp_path / "b.txt", format="csv").column("p") == ["y"]


def test_read_table_errors_name_the_path_or_the_format(tmp_path):
    p = tmp_path / "rows.txt"
    p.write_text("q\nx\n", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{p}: cannot tell the table format from the suffix '.txt'")):
        read_table(p)
    with pytest.raises(ValueError, match=r"unknown table format 'jsnl'.*did you mean 'jsonl'"):
        read_table(p, format="jsnl")
