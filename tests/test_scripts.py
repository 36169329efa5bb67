"""The recipe scripts: a tiny end-to-end run of each, their help, their errors, and their match with the TOMLs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kosim.config import load_config, parse_config

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=300, env=env
    )


def import_script(name: str):
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), SCRIPTS / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "metrics"),
    [
        ("train_sts.py", {"validation_loss", "sts-dev_pearson_cosine", "sts-dev_spearman_cosine"}),
        ("train_nli.py", {"sts-dev_pearson_cosine", "sts-dev_spearman_cosine"}),
    ],
)
def test_script_end_to_end(name, metrics, bert_dir, tmp_path):
    out = tmp_path / "model"
    args = ["--model", str(bert_dir), "--max-train-samples", "32", "--max-eval-samples", "24", "--output", str(out)]
    args += ["--max-seq-length", "32", "--batch-size", "8", "--eval-steps", "2"]
    proc = run_script(name, *args)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # one JSON line; progress goes to stderr
    result = json.loads(lines[0])
    assert set(result["before"]) == metrics and set(result["after"]) == metrics
    assert result["output_dir"] == str(out)
    assert "before:" in proc.stderr and "training ->" in proc.stderr

    for file in ("modules.json", "model.safetensors", "config.json", "tokenizer.json", "1_Pooling/config.json"):
        assert (out / file).is_file(), file
    modules = json.loads((out / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling"]
    card = (out / "README.md").read_text(encoding="utf-8")
    for section in ("## Model Details", "## Usage", "## Evaluation", "## Training Details", "### Training Logs"):
        assert section in card, section
    loss = "CosineSimilarityLoss" if name == "train_sts.py" else "MultipleNegativesRankingLoss"
    assert f"loss:{loss}" in card and "sts-dev" in card
    args_used = json.loads((out / "run_config.json").read_text())
    assert args_used["per_device_train_batch_size"] == 8 and args_used["eval_steps"] == 2
    assert args_used["batch_sampler"] == ("batch_sampler" if name == "train_sts.py" else "no_duplicates")


@pytest.mark.parametrize("name", ["train_sts.py", "train_nli.py"])
def test_script_help(name):
    proc = run_script(name, "--help")
    assert proc.returncode == 0
    for flag in ("--model", "--train", "--dev", "--test", "--batch-size", "--epochs", "--lr", "--warmup-ratio"):
        assert flag in proc.stdout
    for flag in ("--max-train-samples", "--seed", "--output", "--bf16", "--fp16", "--eval-steps"):
        assert flag in proc.stdout


@pytest.mark.parametrize("name", ["train_sts.py", "train_nli.py"])
def test_script_errors(name, tmp_path):
    proc = run_script(name, "--train", str(tmp_path / "missing.tsv"), "--output", str(tmp_path / "o"))
    assert proc.returncode == 2 and "path: file not found" in proc.stderr and "Traceback" not in proc.stderr
    assert str(tmp_path / "missing.tsv") in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize(
    ("name", "toml"),
    [("train_sts.py", "sts.toml"), ("train_nli.py", "nli.toml"), ("train_retrieval.py", "retrieval.toml")],
)
def test_script_defaults_equal_the_bundled_config(name, toml):
    """The scripts and kosim/configs/*.toml describe one recipe: same model, data, losses and training arguments."""
    module = import_script(name)
    args = module.parse_args(["--output", "output/x"])
    from_script = parse_config(module.build_raw_config(args), source=name).to_dict()
    from_toml = load_config(f"kosim:{toml}", ["training.output_dir=output/x"]).to_dict()
    assert from_script == from_toml


def test_sts_eval_steps_follow_the_seed():
    module = import_script("train_sts.py")
    from kosim.data import korsts_path

    assert module.default_eval_steps(str(korsts_path("train")), None, 16) == 90  # 5,749 pairs: 360 steps / 4
    assert module.default_eval_steps(str(korsts_path("train")), 5376, 16) == 84  # the seed: 336 steps / 4
    assert module.default_eval_steps(str(korsts_path("train")), 32, 16) == 1


def test_nli_script_model_loads_in_sentence_transformers_with_a_full_card(roberta_dir, tmp_path):
    """Seed 000's recipe on a tiny RoBERTa: the saved directory is a sentence-transformers model (same embeddings)
    and its card has every section of the seed cards, filled with this run's values."""
    import re

    import numpy as np
    import sentence_transformers as st

    from kosim.model import SentenceEncoder

    out = tmp_path / "nli"
    args = ["--model", str(roberta_dir), "--max-train-samples", "48", "--max-eval-samples", "24"]
    args += ["--output", str(out), "--max-seq-length", "32", "--batch-size", "8", "--eval-steps", "3"]
    proc = run_script("train_nli.py", *args)
    assert proc.returncode == 0, proc.stderr
    after = json.loads(proc.stdout)["after"]

    texts = [
        "한 남자가 음식을 먹고 있다.",
        "비행기가 이륙하고 있다.",
        "The quick brown fox.",
        "아이가 밖에 있다. " * 20,
    ]
    ours = SentenceEncoder.load(out).encode(texts)
    ref = st.SentenceTransformer(str(out), device="cpu").encode(texts, convert_to_numpy=True)
    assert np.abs(ours - ref).max() <= 1e-5

    card = (out / "README.md").read_text(encoding="utf-8")
    front, body = card.split("\n---\n", 1)
    for needle in ("- sentence-transformers", "- dataset_size:", "- loss:MultipleNegativesRankingLoss", "widget:"):
        assert needle in front, needle
    assert "model-index:" in front and f"value: {after['sts-dev_spearman_cosine']}" in front
    for needle in (
        "**Maximum Sequence Length:** 32 tokens",
        "**Output Dimensionality:** 32 dimensions",
        "**Similarity Function:** Cosine Similarity",
        f"**Base model:** `{roberta_dir}`",
        "### Full Model Architecture",
        "SentenceTransformer(",
        "### Direct Usage (kosim)",
        "| **spearman_cosine** |",
        "* Columns: <code>anchor</code>, <code>positive</code>, and <code>negative</code>",
        "* Approximate statistics based on the first",
        "* Samples:",
        '"scale": 20.0',
        '"similarity_fct": "cos_sim"',
        "#### Non-Default Hyperparameters",
        "- `batch_sampler`: no_duplicates",
        "#### All Hyperparameters",
        "### Training Logs",
        "### Framework Versions",
        "- kosim:",
        "- PyTorch:",
        "## Citation",
        "#### MultipleNegativesRankingLoss",
    ):
        assert needle in body, needle
    stats = re.search(r"min: (\d+) tokens</li><li>mean: ([\d.]+) tokens</li><li>max: (\d+) tokens", body)
    assert stats and 0 < int(stats[1]) <= float(stats[2]) <= int(stats[3]) <= 32
    dataset_size = int(re.search(r"dataset_size:(\d+)", front)[1])
    assert dataset_size > 0
    log_rows = [line for line in body.splitlines() if re.match(r"\| [\d.]+\s+\| \d+\s+\|", line)]
    assert log_rows, "training-log table has no rows"


def test_retrieval_script_mines_trains_and_reports_ndcg(bert_dir, tmp_path):
    """The retrieval recipe on a tiny model: mined rows in the output dir, nDCG@10 before and after, a model with a
    card that shows the IR metrics, and the same numbers from `kosim evaluate --ir kornli` on the saved model."""
    out = tmp_path / "retrieval"
    args = ["--model", str(bert_dir), "--max-train-samples", "32", "--max-eval-samples", "100", "--output", str(out)]
    args += ["--max-seq-length", "32", "--batch-size", "8", "--eval-steps", "2", "--lr", "1e-3"]
    proc = run_script("train_retrieval.py", *args, "--relative-margin", "none")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    result = json.loads(lines[0])
    key = "kornli-dev_cosine_ndcg@10"
    assert key in result["before"] and key in result["after"]
    assert result["before"] != result["after"]  # a random tiny model: nDCG@10 itself may stay 0 on 100 queries
    mined = (out / "mined-mined.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(mined) == 32 and set(json.loads(mined[0])) == {"query", "positive", "negative"}
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "Information Retrieval" in card and "cosine_ndcg@10" in card and "loss:MultipleNegativesRankingLoss" in card
    assert json.loads((out / "run_config.json").read_text())["batch_sampler"] == "no_duplicates"

    from kosim.config.runner import build_evaluator
    from kosim.model import SentenceEncoder

    config = parse_config(
        import_script("train_retrieval.py").build_raw_config(import_script("train_retrieval.py").parse_args(args))
    )
    # the recipe's batch size: a padding-free encode is batch-invariant only to float rounding (~1e-7), which can
    # reorder near-tied documents of this random tiny model and move a metric by ~1e-6
    again = build_evaluator(config.evaluators[0], config.training.per_device_eval_batch_size)(SentenceEncoder.load(out))
    assert max(abs(again[k] - result["after"][k]) for k in again) <= 1e-6


def test_retrieval_script_errors(tmp_path):
    proc = run_script("train_retrieval.py", "--beir", str(tmp_path / "missing"), "--output", str(tmp_path / "o"))
    assert proc.returncode == 2 and "[mining] path: not a directory" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
