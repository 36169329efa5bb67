"""Run configs for distillation and guided retrieval: vector labels, `teacher`, and `[mining]` with a guide or the
mined scores (MarginMSE), checked at the edge and run on a tiny model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from kosim.config import ConfigError, parse_config
from kosim.config.runner import load_dataset, run_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import train_retrieval  # noqa: E402


def _mined(tmp_path: Path) -> Path:
    rows = [{"query": f"q{i}", "positive": f"p{i}", "negative_1": f"n{i}", "scores": [0.9, 0.1 * i]} for i in range(3)]
    path = tmp_path / "mined.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _raw(dataset: dict) -> dict:
    return {"model": {"name_or_path": "m"}, "datasets": [dataset], "training": {"output_dir": "o"}}


def test_vector_label_and_teacher_keys(tmp_path):
    entry = {"name": "d", "path": str(_mined(tmp_path)), "format": "jsonl", "label": "scores", "loss": "marginmse"}
    cfg = parse_config(_raw(entry), tmp_path).datasets[0]
    data = load_dataset(cfg)
    assert data.column_names == ["query", "positive", "negative_1"] and data.labels.shape == (3, 2)
    listed = parse_config(_raw({**entry, "label": ["scores"]}), tmp_path).datasets[0]
    assert listed.label == ["scores"]
    teacher = {"name": "d", "path": str(_mined(tmp_path)), "format": "jsonl", "columns": ["query"], "loss": "mse"}
    assert parse_config(_raw({**teacher, "teacher": "t"}), tmp_path).datasets[0].teacher == "t"
    with pytest.raises(ConfigError, match=r"teacher: CosineSimilarityLoss takes no teacher model"):
        parse_config(_raw({**teacher, "loss": "CosineSimilarityLoss", "teacher": "t"}), tmp_path)
    with pytest.raises(ConfigError, match=r"teacher: MSELoss learns the label .* or a teacher model's, not both"):
        parse_config(_raw({**teacher, "label": "scores", "teacher": "t"}), tmp_path)


def _mining_raw(mining: dict) -> dict:
    return {"model": {"name_or_path": "m"}, "mining": {"source": "kornli", **mining}, "training": {"output_dir": "o"}}


def test_mining_guide_and_output_scores_are_checked(tmp_path):
    cfg = parse_config(_mining_raw({"loss": "GISTEmbedLoss", "guide": "g"}), tmp_path).mining
    assert cfg.guide == "g"
    with pytest.raises(ConfigError, match=r"\[mining\] loss: GISTEmbedLoss needs a guide model"):
        parse_config(_mining_raw({"loss": "GISTEmbedLoss"}), tmp_path)
    with pytest.raises(ConfigError, match=r"\[mining\] guide: MultipleNegativesRankingLoss takes no guide"):
        parse_config(_mining_raw({"guide": "g"}), tmp_path)
    with pytest.raises(ConfigError, match=r"output_scores: MarginMSELoss learns .*: set output_scores = true"):
        parse_config(_mining_raw({"loss": "MarginMSELoss"}), tmp_path)
    with pytest.raises(ConfigError, match=r"output_scores: the mined scores are labels only MarginMSELoss learns"):
        parse_config(_mining_raw({"output_scores": True}), tmp_path)


@pytest.mark.parametrize("loss", ["gist", "marginmse"])
def test_retrieval_recipe_options_build_valid_configs(loss, tmp_path):
    args = train_retrieval.parse_args(["--loss", loss, "--output", str(tmp_path / "o"), "--model", "m"])
    mining = parse_config(train_retrieval.build_raw_config(args), tmp_path).mining
    if loss == "gist":
        assert mining.loss == "GISTEmbedLoss" and mining.guide == "m"
    else:
        assert mining.loss == "MarginMSELoss" and mining.options["output_scores"]
        assert mining.options["output_format"] == "n-tuple" and mining.loss_args == {"similarity": "cosine"}


@pytest.mark.parametrize("loss", ["gist", "marginmse"])
def test_mined_rows_train_with_gist_and_marginmse(bert_dir, tmp_path, loss):
    args = ["--loss", loss, "--model", str(bert_dir), "--max-train-samples", "16", "--max-eval-samples", "20"]
    args += ["--output", str(tmp_path / "o"), "--max-seq-length", "32", "--batch-size", "8", "--lr", "1e-3"]
    args += ["--relative-margin", "none", "--num-negatives", "2"]
    raw = train_retrieval.build_raw_config(train_retrieval.parse_args(args))
    raw["training"]["disable_tqdm"] = True
    result = run_config(parse_config(raw, tmp_path), log=lambda m: None)
    key = "kornli-dev_cosine_ndcg@10"
    assert key in result["before"] and np.isfinite(result["after"][key])
    rows = [json.loads(x) for x in (tmp_path / "o" / "mined-mined.jsonl").read_text("utf-8").splitlines()]
    assert ("scores" in rows[0]) == (loss == "marginmse")
    card = (tmp_path / "o" / "README.md").read_text(encoding="utf-8")
    assert ("Guide model of 'mined'" in card) == (loss == "gist")
