"""Mining's options beyond parity: the random strategy, clear errors, the files kosim train reads, the CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from mining_doubles import HashEncoder, embed_all

from kosim.config import DatasetConfig
from kosim.config.runner import load_dataset
from kosim.data import ColumnDataset, kornli_path
from kosim.mining import mine_hard_negatives, to_column_dataset, write_mined


@pytest.fixture(scope="module")
def data() -> dict[str, list[str]]:
    rows = ColumnDataset.from_tsv(kornli_path(), columns=["sentence1", "sentence2", "gold_label"]).head(300)
    keep = [i for i, label in enumerate(rows.column("gold_label")) if label == "entailment"]
    return {
        "anchor": [rows.column("sentence1")[i] for i in keep],
        "positive": [rows.column("sentence2")[i] for i in keep],
    }


FILTERS = {"range_min": 1, "range_max": 15, "relative_margin": 0.02, "min_score": 0.3}


def scores_of(data: dict, anchor: str, texts: list[str]) -> np.ndarray:
    return embed_all(texts) @ embed_all([anchor])[0]


def test_random_strategy_is_seeded_and_respects_the_filters(data):
    def mine(output_format="n-tuple", **kw):
        return mine_hard_negatives(data, HashEncoder(), verbose=False, output_format=output_format, **FILTERS, **kw)

    first, again, other = mine(sampling_strategy="random", seed=1), mine(sampling_strategy="random", seed=1), None
    assert first == again
    other = mine(sampling_strategy="random", seed=2)
    assert other != first
    width = FILTERS["range_max"] - FILTERS["range_min"]
    allowed = mine(num_negatives=width, output_format="labeled-list")  # every survivor in the rank window
    allowed_of = {a: docs[1:] for a, docs in zip(allowed["anchor"], allowed["positive"])}
    top = mine()
    assert first["anchor"] != [] and len(first["anchor"]) <= len(allowed["anchor"])
    for i, anchor in enumerate(first["anchor"]):
        picked = [first[f"negative_{j}"][i] for j in (1, 2, 3)]
        assert set(picked) <= set(allowed_of[anchor]) and len(set(picked)) == 3
        s = scores_of(data, anchor, picked)
        assert np.all(np.diff(s) <= 1e-6)  # best first, as the top strategy
    assert first["negative_1"] != top["negative_1"]


def test_random_strategy_with_too_few_candidates_takes_them_all(data):
    kwargs = {"max_score": 0.55, "num_negatives": 5, "range_max": 8, "output_format": "labeled-list", "verbose": False}
    top = mine_hard_negatives(data, HashEncoder(), **kwargs)
    rand = mine_hard_negatives(data, HashEncoder(), sampling_strategy="random", seed=3, **kwargs)
    few = [i for i, docs in enumerate(top["positive"]) if len(docs) - 1 < 5]
    assert few, "the filters leave some anchors short of 5 negatives"
    for i in few:
        assert sorted(rand["positive"][i]) == sorted(top["positive"][i])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"cross_encoder": object()}, ValueError, "cross_encoder"),
        ({"use_faiss": True}, ValueError, "use_faiss"),
        ({"output_format": "triplets"}, ValueError, "did you mean 'triplet'"),
        ({"sampling_strategy": "rand"}, ValueError, "sampling_strategy"),
        ({"include_positives": True, "output_format": "triplet"}, ValueError, "n-tuple"),
        ({"range_min": 5, "range_max": 5}, ValueError, "range_min must be smaller"),
        ({"num_negatives": 6, "range_min": 2, "range_max": 7}, ValueError, "num_negatives=6"),
        ({"num_negatives": 0}, ValueError, "num_negatives"),
        ({"range_min": -1}, ValueError, "range_min"),
        ({"max_score": float("nan")}, ValueError, "max_score"),
        ({"anchor_column_name": "anchr"}, KeyError, "did you mean 'anchor'"),
        ({"positive_column_name": "anchor"}, ValueError, "both 'anchor'"),
        ({"query_prompt_name": "qeury"}, KeyError, "query_prompt_name"),
        ({"corpus": "one string"}, TypeError, "corpus"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_options_raise_naming_them(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        mine_hard_negatives(data, HashEncoder({"query": "q: "}), verbose=False, **kwargs)


def test_distance_models_are_refused(data):
    model = HashEncoder()
    model.similarity_fn_name = "euclidean"
    with pytest.raises(ValueError, match="euclidean"):
        mine_hard_negatives(data, model, verbose=False)


def test_bad_datasets_raise():
    with pytest.raises(ValueError, match="empty"):
        mine_hard_negatives({"a": [], "b": []}, HashEncoder(), verbose=False)
    with pytest.raises(ValueError, match="name the positive column"):
        mine_hard_negatives({"a": ["x"]}, HashEncoder(), verbose=False)
    with pytest.raises(TypeError, match=r"'b'.*\[1\]"):
        mine_hard_negatives({"a": ["x", "y"], "b": ["z", 3]}, HashEncoder(), verbose=False)
    with pytest.raises(TypeError, match="ColumnDataset"):
        mine_hard_negatives([("x", "y")], HashEncoder(), verbose=False)


def test_corpus_smaller_than_the_window(data):
    small = {k: v[:4] for k, v in data.items()}
    got = mine_hard_negatives(small, HashEncoder(), num_negatives=5, range_max=30, verbose=False, output_scores=True)
    assert len(got["anchor"]) == 4 * 3  # each anchor: the three other positives, nothing invented
    assert all(np.isfinite(s).all() for s in got["scores"])


def test_summary_on_stderr(data, capsys):
    mine_hard_negatives(data, HashEncoder(), relative_margin=0.05, max_score=0.5, min_score=0.4, progress=False)
    err = capsys.readouterr().err
    assert "were a positive of their anchor" in err and "relative_margin=0.05" in err
    assert "above max_score=0.5" in err and "below min_score=0.4" in err
    assert "negative scores: n=" in err and "fewer than 3 negatives" in err
    mine_hard_negatives(data, HashEncoder(), verbose=False)
    assert capsys.readouterr().err == ""


def _emptied_by_margin(data, range_max: int, margin: float) -> int:
    """By brute force: anchors whose candidates ranked 0 .. range_max (the window, room for the one positive) all
    score above positive - |positive| x margin once the positive is left out."""
    texts = list(dict.fromkeys(data["positive"]))
    emptied = 0
    for anchor, positive in zip(data["anchor"], data["positive"]):
        scores = scores_of(data, anchor, texts)  # [candidates]
        window = [i for i in np.argsort(-scores, kind="stable")[: range_max + 1] if texts[i] != positive]
        threshold = scores[texts.index(positive)] * (1 - np.sign(scores[texts.index(positive)]) * margin)
        emptied += bool((scores[window] > threshold).all())
    return emptied


@pytest.mark.parametrize("range_max", [5, 40])
def test_summary_counts_the_anchors_whose_window_the_margin_emptied(data, capsys, range_max):
    expected = _emptied_by_margin(data, range_max, 0.05)
    assert expected > 0
    mine_hard_negatives(data, HashEncoder(), range_max=range_max, relative_margin=0.05, num_negatives=1, progress=False)
    err = capsys.readouterr().err
    assert f"for {expected:,} anchors every candidate up to range_max={range_max} scored within the margin" in err
    assert "a larger range_max reaches those below it" in err


@pytest.mark.parametrize("suffix", [".tsv", ".jsonl"])
@pytest.mark.parametrize(
    "fmt, scores, label",
    [
        ("triplet", False, None),
        ("triplet", True, None),
        ("n-tuple", True, None),
        ("labeled-pair", False, "label"),
        ("labeled-pair", True, "score"),
    ],
)
def test_written_files_are_what_kosim_train_reads(tmp_path, data, suffix, fmt, scores, label):
    mined = mine_hard_negatives(data, HashEncoder(), output_format=fmt, output_scores=scores, verbose=False)
    path = write_mined(mined, tmp_path / f"mined{suffix}")
    texts = [k for k in mined if k not in ("scores", "score", "label")]
    cfg = DatasetConfig(name="mined", path=path, format=suffix[1:], columns=texts, label=label)
    loaded = load_dataset(cfg)
    assert loaded.column_names == texts and len(loaded) == len(mined["anchor"])
    for key in texts:
        assert loaded.column(key) == mined[key]
    if label is not None:
        np.testing.assert_array_equal(loaded.labels, np.asarray(mined[label], dtype=np.float64))
    expected = to_column_dataset(mined, label=label)
    assert expected.column_names == texts and (label is None or np.array_equal(expected.labels, loaded.labels))
    if scores and fmt != "labeled-pair":
        n = len(mined["scores"][0])
        if suffix == ".tsv":
            table = ColumnDataset.from_tsv(path, columns=[f"scores_{j}" for j in range(n)])
            got = np.array([[float(x) for x in table.column(f"scores_{j}")] for j in range(n)]).T
        else:
            got = np.array([json.loads(line)["scores"] for line in path.read_text(encoding="utf-8").splitlines()])
        np.testing.assert_array_equal(got, np.asarray(mined["scores"]))


def test_labeled_list_goes_to_jsonl_only(tmp_path, data):
    mined = mine_hard_negatives(data, HashEncoder(), output_format="labeled-list", max_score=0.5, verbose=False)
    with pytest.raises(ValueError, match="jsonl"):
        write_mined(mined, tmp_path / "x.tsv")
    assert not (tmp_path / "x.tsv").exists() and not list(tmp_path.iterdir())
    rows = [json.loads(line) for line in write_mined(mined, tmp_path / "x.jsonl").read_text().splitlines()]
    assert [r["positive"] for r in rows] == mined["positive"] and [r["labels"] for r in rows] == mined["labels"]
    with pytest.raises(ValueError, match="labeled-list"):
        to_column_dataset(mined)
    with pytest.raises(ValueError, match="line break"):
        write_mined({"anchor": ["a\tb"], "positive": ["c"]}, tmp_path / "y.tsv")


def _cli(argv: list[str]) -> int:
    from kosim.cli import mine

    parser = argparse.ArgumentParser(prog="kosim mine")
    mine.add_arguments(parser)
    return mine.run(parser.parse_args(argv))


def test_cli_mines_a_file(tmp_path, data, bert_dir, capsys):
    from kosim.model import SentenceEncoder

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("query\tanswer\n" + "".join(f"{a}\t{p}\n" for a, p in zip(data["anchor"][:25], data["positive"])))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(data["positive"][25:60]) + "\n")
    out = tmp_path / "out" / "hard.jsonl"
    argv = ["--model", str(bert_dir), "--input", str(pairs), "--corpus", str(corpus), "--output", str(out)]
    argv += [
        "--num-negatives",
        "2",
        "--output-format",
        "n-tuple",
        "--output-scores",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    assert _cli(argv + ["--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["columns"] == ["query", "answer", "negative_1", "negative_2", "scores"] and printed["rows"] == 25
    model = SentenceEncoder.load(bert_dir)
    table = ColumnDataset.from_tsv(pairs)
    want = mine_hard_negatives(
        table,
        model,
        corpus=data["positive"][25:60],
        num_negatives=2,
        output_format="n-tuple",
        output_scores=True,
        verbose=False,
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["negative_2"] for r in rows] == want["negative_2"]
    np.testing.assert_allclose([r["scores"] for r in rows], want["scores"], atol=1e-6)


def test_cli_errors_are_usage_errors(tmp_path, bert_dir):
    from kosim.cli.common import UsageError

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("a\tb\n하나\t둘\n셋\t넷\n")
    base = ["--model", str(bert_dir), "--input", str(pairs), "--quiet"]
    with pytest.raises(UsageError, match="tsv or .jsonl"):
        _cli(base + ["--output", str(tmp_path / "x.csv")])
    with pytest.raises(UsageError, match="range_min"):
        _cli(base + ["--output", str(tmp_path / "x.tsv"), "--range-min", "9", "--range-max", "3"])
    with pytest.raises(UsageError, match="did you mean 'a'"):
        _cli(base + ["--output", str(tmp_path / "x.tsv"), "--anchor-column", "aa"])


def test_search_runs_on_the_model_device(data, monkeypatch):
    seen = []
    from kosim import search

    original = search.topk_search

    def spy(queries, corpus, *args):
        seen.append((queries.device, corpus.device, args[1]))
        return original(queries, corpus, *args)

    monkeypatch.setattr(search, "topk_search", spy)
    mine_hard_negatives(data, HashEncoder(), verbose=False, query_chunk_size=16)
    assert seen and all(q == c == torch.device("cpu") and fn == "dot" for q, c, fn in seen)
    assert len(seen) == -(-len(set(data["anchor"])) // 16)
