"""KorSTS / KorNLI / sentence-file readers against the bundled KorNLU copy and small bad files."""

from __future__ import annotations

import csv
import random
import re
from collections import OrderedDict

import numpy as np
import pytest

from kosim.data.datasets import DataError
from kosim.data.readers import read_kornli_triplets, read_korsts, read_sentences
from kosim.data.resources import KORNLU_DIR, kornli_path, korsts_path

# -- resources -------------------------------------------------------------------------------------------------------


def test_resource_paths():
    assert korsts_path("train").name == "sts-train.tsv" and korsts_path("dev").is_file()
    assert kornli_path().name == "xnli.dev.ko.tsv" and kornli_path("dev").parent.parent == KORNLU_DIR
    with pytest.raises(ValueError, match="'train', 'dev'"):
        korsts_path("test")
    with pytest.raises(ValueError, match="'dev'"):
        kornli_path("train")


# -- KorSTS ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("split", "rows"), [("train", 5749), ("dev", 1500)])
def test_korsts_counts_and_labels(split, rows):
    ds = read_korsts(korsts_path(split))
    assert len(ds) == rows and ds.column_names == ["sentence1", "sentence2"] and ds.name == f"sts-{split}"
    assert ds.labels.min() >= 0.0 and ds.labels.max() <= 1.0 and ds.labels.dtype == np.float64
    # independent parse of the first data line
    with open(korsts_path(split), encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        first = dict(zip(header, f.readline().rstrip("\n").split("\t")))
    assert ds.column("sentence1")[0] == first["sentence1"] and ds.column("sentence2")[0] == first["sentence2"]
    assert ds.labels[0] == pytest.approx(float(first["score"]) / 5.0)
    assert any('"' in s for s in ds.column("sentence1") + ds.column("sentence2")) or split == "dev"


def test_korsts_bad_rows(tmp_path):
    header = "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n"
    good = "g\tf\t2012\t1\t3.0\t문장 하나\t문장 둘\n"
    cases = [
        (header + good + "g\tf\t2012\t2\tfive\ta\tb\n", 3, "non-numeric"),
        (header + good + good + "g\tf\t2012\t2\tNaN\ta\tb\n", 4, "not finite"),
        (header + good + "g\tf\t2012\t2\t6.0\ta\tb\n", 3, "outside"),
        (header + "g\tf\t2012\t2\t1.0\ta\n", 2, "expected 7 fields"),
        (header + good + "g\tf\t2012\t2\t1.0\ta\t \n", 3, "empty text"),
    ]
    for i, (content, line, pattern) in enumerate(cases):
        p = tmp_path / f"sts{i}.tsv"
        p.write_text(content, encoding="utf-8")
        with pytest.raises(DataError, match=pattern) as err:
            read_korsts(p)
        assert str(err.value).startswith(f"{p}:{line}: ")
    p = tmp_path / "renamed.tsv"
    p.write_text(header.replace("score", "scores") + good, encoding="utf-8")
    with pytest.raises(DataError, match="did you mean 'scores'") as err:
        read_korsts(p)
    assert str(err.value).startswith(f"{p}:1: ")


# -- KorNLI triplets -------------------------------------------------------------------------------------------------


def reference_triplets(path, seed):
    """The SBERT NLI recipe, written independently: csv.DictReader rows, ordered dict-of-lists partners."""
    table: OrderedDict[str, dict[str, list[str]]] = OrderedDict()

    def add(a, b, label):
        partners = table.setdefault(a, {"entailment": [], "neutral": [], "contradiction": []})[label]
        if b not in partners:
            partners.append(b)

    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            s1, s2 = row["sentence1"].strip(), row["sentence2"].strip()
            add(s1, s2, row["gold_label"])
            add(s2, s1, row["gold_label"])
    rnd = random.Random(seed)
    out = []
    for s, p in table.items():
        if p["entailment"] and p["contradiction"]:
            out.append((s, rnd.choice(p["entailment"]), rnd.choice(p["contradiction"])))
            out.append((rnd.choice(p["entailment"]), s, rnd.choice(p["contradiction"])))
    return out, table


def triplets_of(ds):
    return list(zip(ds.column("anchor"), ds.column("positive"), ds.column("negative")))


def test_kornli_triplets_match_recipe():
    path = kornli_path()
    ds = read_kornli_triplets(path, seed=42)
    assert ds.column_names == ["anchor", "positive", "negative"] and ds.labels is None
    expected, table = reference_triplets(path, 42)
    assert triplets_of(ds) == expected

    # anchors of even rows: every sentence with both an entailment and a contradiction partner, by another route
    pairs = {"entailment": set(), "contradiction": set()}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            a, b, label = (x.strip() for x in line.rstrip("\n").split("\t"))
            if label in pairs:
                pairs[label] |= {(a, b), (b, a)}
    has_ent = {a for a, _ in pairs["entailment"]}
    has_con = {a for a, _ in pairs["contradiction"]}
    keys = ds.column("anchor")[0::2]
    assert set(keys) == has_ent & has_con and len(keys) == len(set(keys))
    assert ds.column("positive")[1::2] == keys

    for i, (a, p, n) in enumerate(triplets_of(ds)):
        key = a if i % 2 == 0 else p
        assert (a, p) in pairs["entailment"]
        assert (key, n) in pairs["contradiction"]


def test_kornli_triplets_deterministic(tmp_path):
    # In the XNLI dev file every sentence has exactly one entailment and one contradiction partner, so the seed
    # cannot matter there; a synthetic file with many partners exercises the random picks.
    a = triplets_of(read_kornli_triplets(kornli_path(), seed=7))
    assert a == triplets_of(read_kornli_triplets(kornli_path(), seed=8))

    rows = ["sentence1\tsentence2\tgold_label"]
    for i in range(30):
        for j in range(6):
            rows.append(f"전제 {i}\t가설 {i}-{j}\t{'entailment' if j % 2 else 'contradiction'}")
    p = tmp_path / "many.tsv"
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    x = triplets_of(read_kornli_triplets(p, seed=1))
    assert x == triplets_of(read_kornli_triplets(p, seed=1)) == reference_triplets(p, 1)[0]
    y = triplets_of(read_kornli_triplets(p, seed=2))
    assert x != y and y == reference_triplets(p, 2)[0]
    assert [t[0] for t in x[0::2]] == [t[0] for t in y[0::2]] == [f"전제 {i}" for i in range(30)]


def test_kornli_bad_rows(tmp_path):
    p = tmp_path / "nli.tsv"
    p.write_text("sentence1\tsentence2\tgold_label\na\tb\tentailment\na\tc\tcontradictory\n", encoding="utf-8")
    with pytest.raises(DataError, match="unknown gold_label 'contradictory'") as err:
        read_kornli_triplets(p)
    assert str(err.value).startswith(f"{p}:3: ")
    p.write_text("sentence1\tsentence2\tgold_label\na\tb\tentailment\n \tc\tneutral\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty text") as err:
        read_kornli_triplets(p)
    assert str(err.value).startswith(f"{p}:3: ")
    p.write_text("premise\thypothesis\tgold_label\na\tb\tentailment\n", encoding="utf-8")
    with pytest.raises(DataError, match="column 'sentence1' not found"):
        read_kornli_triplets(p)
    p.write_text("sentence1\tsentence2\tgold_label\na\tb\tentailment\n", encoding="utf-8")
    with pytest.raises(DataError, match="no sentence has both"):
        read_kornli_triplets(p)
    p.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{p}: empty file")):
        read_kornli_triplets(p)


# -- plain sentences -------------------------------------------------------------------------------------------------


def test_read_sentences(tmp_path):
    p = tmp_path / "s.txt"
    p.write_text('첫 문장\n"둘째"\tx\n\n', encoding="utf-8")
    assert read_sentences(p) == ["첫 문장", '"둘째"\tx']
    p.write_text("a\n   \nb\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_sentences(p)
    assert str(err.value) == f"{p}:2: empty line"
    p.write_text("a\n\nb\n", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{p}:2: empty line")):
        read_sentences(p)
    p.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(f"{p}: no sentences")):
        read_sentences(p)
