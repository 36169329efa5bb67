"""`kosim mine` / `kosim evaluate` with `--devices cpu,cpu`: a multi-process encode (kosim.encode_pool) giving the
same output as one process, and bad device lists refused at the edge (exit 2, naming the device)."""

from __future__ import annotations

import json

import pytest
from helpers import KOREAN, write_beir

import kosim.encode_pool
from kosim.cli.main import main
from kosim.model import SentenceEncoder


@pytest.fixture(scope="module")
def model_dir(bert_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("devices-model")
    SentenceEncoder.load(bert_dir).save(out)
    return out


@pytest.fixture
def pools(monkeypatch):
    """The device lists of the EncodePools the command starts (the real pools, recorded)."""
    started: list[list[str]] = []

    class Recording(kosim.encode_pool.EncodePool):
        def __init__(self, model, devices=None, **kwargs):
            started.append(list(devices))
            super().__init__(model, devices=devices, **kwargs)

    monkeypatch.setattr(kosim.encode_pool, "EncodePool", Recording)
    return started


def _pairs(tmp_path):
    ko = [t for t in KOREAN if not t.isascii()]
    path = tmp_path / "pairs.tsv"
    path.write_text("query\tanswer\n" + "".join(f"{a}\t{b}\n" for a, b in zip(ko, ko[1:] + ko[:1])), "utf-8")
    return path


def test_mine_with_two_cpu_workers_writes_the_same_rows(model_dir, tmp_path, capsys, pools):
    base = ["mine", "--model", str(model_dir), "--input", str(_pairs(tmp_path)), "--num-negatives", "2", "--quiet"]
    base += ["--output-format", "n-tuple", "--output-scores"]
    assert main([*base, "--output", str(tmp_path / "one.jsonl")]) == 0
    assert pools == []
    assert main([*base, "--output", str(tmp_path / "two.jsonl"), "--devices", "cpu,cpu"]) == 0
    assert pools == [["cpu", "cpu"]]
    one, two = (
        [json.loads(line) for line in (tmp_path / f).read_text().splitlines()] for f in ("one.jsonl", "two.jsonl")
    )
    assert [r["negative_2"] for r in one] == [r["negative_2"] for r in two] and len(one) == 7
    for a, b in zip(one, two):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-6)
    capsys.readouterr()


def test_evaluate_with_two_cpu_workers_gives_the_same_metrics(model_dir, tmp_path, capsys, pools):
    argv = ["evaluate", "--model", str(model_dir), "--beir", str(write_beir(tmp_path / "beir"))]
    assert main(argv) == 0
    one = json.loads(capsys.readouterr().out)
    assert main([*argv, "--devices", "cpu, cpu"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert pools == [["cpu", "cpu"]]
    assert set(one) == set(two) and max(abs(one[k] - two[k]) for k in one) <= 1e-6


@pytest.mark.parametrize("command", ["mine", "evaluate"])
@pytest.mark.parametrize(
    ("devices", "message"),
    [
        ("cpu,cpux", "invalid device 'cpux'"),
        ("cpu,,cpu", "comma-separated devices"),
        ("cpu,tpu", "'tpu'"),
    ],
)
def test_bad_device_lists_exit_2_naming_them(model_dir, tmp_path, capsys, pools, command, devices, message):
    if command == "mine":
        argv = ["mine", "--input", str(_pairs(tmp_path)), "--output", str(tmp_path / "x.tsv")]
    else:
        argv = ["evaluate", "--beir", str(write_beir(tmp_path / "beir"))]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--model", str(model_dir), "--devices", devices])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--devices" in err and message in err
    assert pools == []


def _sts(tmp_path):
    ko = [t for t in KOREAN if not t.isascii()]
    path = tmp_path / "sts.tsv"
    rows = "".join(f"{a}\t{b}\t{i % 5 + 0.5}\n" for i, (a, b) in enumerate(zip(ko, ko[1:] + ko[:1])))
    path.write_text("sentence1\tsentence2\tscore\n" + rows, "utf-8")
    return path


def test_evaluate_sts_with_two_cpu_workers_gives_the_same_metrics(model_dir, tmp_path, capsys, pools):
    argv = ["evaluate", "--model", str(model_dir), "--sts", str(_sts(tmp_path))]
    assert main(argv) == 0
    one = json.loads(capsys.readouterr().out)
    assert main([*argv, "--devices", "cpu,cpu"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert pools == [["cpu", "cpu"]]
    assert set(one) == set(two) == {"sts_pearson_cosine", "sts_spearman_cosine"}
    assert max(abs(one[k] - two[k]) for k in one) <= 1e-6


def test_evaluate_sts_bad_device_exits_2_naming_it(model_dir, tmp_path, capsys, pools):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", str(model_dir), "--sts", str(_sts(tmp_path)), "--devices", "cpu,cpux"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--devices" in err and "invalid device 'cpux'" in err
    assert pools == []
