"""The kosim command: train a tiny model end to end, then encode / evaluate / search with it; help texts; errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kosim.cli.main import COMMANDS, main
from kosim.data.resources import KORNLU_DIR
from kosim.model import SentenceEncoder


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and a busy 2-core box makes 2 intra-op threads up to 50x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


STS_DEV = KORNLU_DIR / "KorSTS" / "sts-dev.tsv"
SENTENCES = [
    "비행기가 이륙하고 있다.",
    "한 남자가 피자에 치즈를 뿌려놓고 있다.",
    "두 남자가 체스를 하고 있다.",
    "아이가 밖에 있다.",
]

TINY = """\
[model]
name_or_path = "{model}"
max_seq_length = 32

[[datasets]]
name = "sts"
path = "kosim:KorSTS/sts-train.tsv"
format = "korsts"
max_rows = 32
loss = "CosineSimilarityLoss"

[[eval_datasets]]
name = "sts"
path = "kosim:KorSTS/sts-dev.tsv"
format = "korsts"
max_rows = 24

[[evaluators]]
type = "sts"
name = "sts-dev"
path = "kosim:KorSTS/sts-dev.tsv"
max_rows = 24

[training]
output_dir = "{output}"
per_device_train_batch_size = 16
num_train_epochs = 1
eval_strategy = "steps"
eval_steps = 1
logging_steps = 1
disable_tqdm = true
"""


def kosim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, "-m", "kosim", *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd
    )


@pytest.fixture(scope="module")
def trained(bert_dir, tmp_path_factory) -> tuple[Path, dict, Path]:
    """`python -m kosim train` on a tiny config: (model directory, final JSON, config path)."""
    root = tmp_path_factory.mktemp("cli")
    config = root / "tiny.toml"
    config.write_text(TINY.format(model=bert_dir, output=root / "model"), encoding="utf-8")
    proc = kosim("train", str(config), "--override", "training.learning_rate=1e-4")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # stdout holds only the final JSON line; progress goes to stderr
    assert "kosim: before:" in proc.stderr and "kosim: after:" in proc.stderr
    return root / "model", json.loads(lines[0]), config


def test_train_end_to_end(trained):
    model_dir, result, _ = trained
    keys = {"validation_loss", "sts-dev_pearson_cosine", "sts-dev_spearman_cosine"}
    assert set(result["before"]) == keys and set(result["after"]) == keys
    assert result["output_dir"] == str(model_dir) and result["train_seconds"] > 0
    for name in ("modules.json", "model.safetensors", "config_sentence_transformers.json", "1_Pooling/config.json"):
        assert (model_dir / name).is_file(), name
    card = (model_dir / "README.md").read_text(encoding="utf-8")
    assert "## Training Details" in card and "CosineSimilarityLoss" in card
    assert json.loads((model_dir / "run_config.json").read_text())["learning_rate"] == 1e-4  # the override applied
    logged = [json.loads(line) for line in (model_dir / "train_log.jsonl").read_text().splitlines()]
    assert any("sts-dev_spearman_cosine" in r for r in logged)  # evaluated during training
    assert SentenceEncoder.load(model_dir).max_seq_length == 32


def test_dry_run(trained, capsys):
    _, _, config = trained
    assert main(["train", str(config), "--dry-run", "--override", "datasets.sts.max_rows=5"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["datasets"][0]["max_rows"] == 5 and resolved["training"]["eval_steps"] == 1
    assert resolved["datasets"][0]["path"] == str(KORNLU_DIR / "KorSTS" / "sts-train.tsv")


def test_encode(trained, tmp_path, capsys):
    model_dir = trained[0]
    (tmp_path / "s.txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    out = tmp_path / "sub" / "emb.npy"
    assert main(["encode", "--model", str(model_dir), "--input", str(tmp_path / "s.txt"), "--output", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["shape"] == [4, 32]
    expected = SentenceEncoder.load(model_dir).encode(SENTENCES)
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-5, atol=1e-6)

    argv = ["encode", "--model", str(model_dir), "--input", str(STS_DEV), "--column", "sentence2"]
    assert main([*argv, "--output", str(out), "--normalize", "--dtype", "bfloat16", "--batch-size", "64"]) == 0
    emb = np.load(out)
    assert emb.shape == (1500, 32) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)


def test_evaluate(trained, capsys):
    model_dir, result, _ = trained
    assert main(["evaluate", "--model", str(model_dir), "--sts", str(STS_DEV)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) == {"sts-dev_pearson_cosine", "sts-dev_spearman_cosine"}
    assert -1.0 <= metrics["sts-dev_spearman_cosine"] <= 1.0
    argv = ["evaluate", "--model", str(model_dir), "--sts", str(STS_DEV), "--name", "x", "--similarity-fns", "dot"]
    assert main(argv) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"x_pearson_dot", "x_spearman_dot"}


def test_search(trained, tmp_path, capsys):
    model_dir = trained[0]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    argv = ["search", "--model", str(model_dir), "--corpus", str(corpus), "--query", SENTENCES[2], "--query", "체스"]
    assert main([*argv, "--top-k", "2", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["query"] for line in lines] == [SENTENCES[2], "체스"]
    model = SentenceEncoder.load(model_dir)
    emb = model.encode(SENTENCES, normalize=True)
    for line in lines:
        q = model.encode(line["query"], normalize=True)
        best = np.argsort(-(emb @ q))[:2]
        assert [hit["index"] for hit in line["hits"]] == best.tolist()
        assert [hit["text"] for hit in line["hits"]] == [SENTENCES[i] for i in best]
    assert lines[0]["hits"][0]["index"] == 2 and lines[0]["hits"][0]["score"] == pytest.approx(1.0, abs=1e-5)

    assert main([*argv[:5], "--query", SENTENCES[0]]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"query: {SENTENCES[0]}\n") and len(text.splitlines()) == 1 + 4  # top-k 5 > corpus of 4
    assert f"1. 1.0000  {SENTENCES[0]}" in text


# ------------------------------------------------------------------------------------------------ help
@pytest.mark.parametrize("command", [None] + [c.name for c in COMMANDS])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"] if command is None else [command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: kosim")
    if command is None:
        assert all(c.name in text for c in COMMANDS)
    else:
        assert "examples:" in text and len(text) > 600


def test_python_m_kosim_and_version():
    proc = kosim("--help")
    assert proc.returncode == 0 and "train" in proc.stdout and "search" in proc.stdout
    proc = kosim("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("kosim ")


# ------------------------------------------------------------------------------------------------ errors
def test_errors_exit_2_without_traceback(trained, tmp_path, capsys, monkeypatch):
    model_dir, _, config = trained
    bad = tmp_path / "bad.toml"
    bad.write_text(config.read_text().replace("[training]", "[training]\nlearning_rat = 1.0"))
    monkeypatch.chdir(tmp_path)
    cases = [
        (["train", str(tmp_path / "missing.toml")], "config file not found"),
        (["train", str(bad)], "[training] unknown key 'learning_rat'; did you mean 'learning_rate'?"),
        (["train", str(config), "--override", "training.warmup_ratio=2.0"], "warmup_ratio"),
        (["train", str(config), "--override", "datasets.sts.path=nope.tsv"], "[[datasets]] 'sts' path: file not found"),
        (["train", str(config), "--override", "datasets.sts.loss=cosin"], "unknown loss 'cosin'"),
        (["encode", "--model", str(model_dir), "--input", str(STS_DEV), "--output", "x.npy"], "--column"),
        (["encode", "--model", str(tmp_path / "nomodel"), "--input", str(STS_DEV), "--column", "sentence1",
          "--output", "x.npy"], "does not exist"),
        (["encode", "--model", str(model_dir), "--input", str(STS_DEV), "--column", "sentence3",
          "--output", "x.npy"], "column 'sentence3' not found"),
        (["evaluate", "--model", str(model_dir), "--sts", str(config)], str(config)),  # not a KorSTS file
    ]  # fmt: skip
    for argv, message in cases:
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.err.startswith(f"kosim {argv[0]}: error: ") and message in captured.err, (argv, captured.err)
        assert captured.out == ""


def test_errors_in_a_subprocess(tmp_path):
    proc = kosim("evaluate", "--model", str(tmp_path), "--sts", str(tmp_path / "none.tsv"))
    assert proc.returncode == 2 and "argument --sts: file not found" in proc.stderr  # argparse's own exit code
    (tmp_path / "bad.toml").write_text("[model\n")
    proc = kosim("train", str(tmp_path / "bad.toml"))
    assert proc.returncode == 2 and "invalid TOML" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_training_failure_exits_1(trained, tmp_path, capsys, monkeypatch):
    """A failure of the training itself (here a stand-in for a non-finite loss) exits 1, not 2. (fp16 on a CPU-only
    machine used to be the example; it is now a config error found before anything is written: test_edge_errors.)"""
    from kosim.training import Trainer, TrainingError

    def fail(self):
        raise TrainingError("loss is nan at step 1")

    monkeypatch.setattr(Trainer, "train", fail)
    _, _, config = trained
    assert main(["train", str(config), "--override", f"training.output_dir={tmp_path / 'o'}"]) == 1
    assert "kosim train: training failed: loss is nan at step 1" in capsys.readouterr().err
