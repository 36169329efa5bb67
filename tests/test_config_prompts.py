"""TrainingArguments.prompts from Python, TOML and --override: the accepted shapes and the errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kosim.config import ConfigError, load_config
from kosim.config.arguments import TrainingArguments
from kosim.config.prompts import model_prompts, resolve_prompts, run_prompts

BASE = """\
[model]
name_or_path = "klue/roberta-base"

[[datasets]]
name = "nli"
path = "kosim:KorNLI/xnli.dev.ko.tsv"
format = "kornli_triplets"
loss = "MultipleNegativesRankingLoss"

[training]
learning_rate = 1e-4
"""
COLUMNS = {"nli": ["anchor", "positive", "negative"], "sts": ["sentence1", "sentence2"]}


def _load(tmp_path: Path, extra: str = "", overrides=()) -> TrainingArguments:
    path = tmp_path / "config.toml"
    path.write_text(BASE + extra, encoding="utf-8")
    return load_config(path, overrides).training


def test_toml_and_override_forms(tmp_path):
    assert _load(tmp_path, 'prompts = "질문: "\n').prompts == "질문: "
    table = _load(tmp_path, '\n[training.prompts]\nanchor = "질문: "\npositive = "문서: "\n').prompts
    assert table == {"anchor": "질문: ", "positive": "문서: "}
    nested = _load(tmp_path, '\n[training.prompts.nli]\nanchor = "질문: "\n').prompts
    assert nested == {"nli": {"anchor": "질문: "}}
    assert _load(tmp_path, overrides=['training.prompts.anchor="query: "']).prompts == {"anchor": "query: "}
    assert _load(tmp_path, overrides=['training.prompts="query: "']).prompts == "query: "
    assert _load(tmp_path, overrides=['training.prompts.nli.anchor="q: "']).prompts == {"nli": {"anchor": "q: "}}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("prompts = 3\n", r"\[training\] TrainingArguments.prompts=3: expected a str"),
        ("prompts = { anchor = 1 }\n", r"prompts=.*anchor: expected a str prompt .*got int"),
        ("prompts = { nli = { anchor = 1 } }\n", r"nli.anchor: expected a str prompt, got int"),
        ("prompts = { nil = { anchor = 'q: ' } }\n", r"prompts.nil: 'nil' is not a dataset .*did you mean 'nli'"),
    ],
)
def test_bad_prompts_in_toml_name_the_key(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, extra)


def test_python_arguments_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"TrainingArguments.prompts=\['q'\]: expected a str"):
        TrainingArguments(prompts=["q"])
    assert TrainingArguments(prompts={"nli": {"anchor": "q: "}, "sentence1": "s: "}).prompts


def test_resolution_by_column_dataset_and_both():
    assert resolve_prompts("q: ", {"nli": ["a", "b"]}) == {"nli": {"a": "q: ", "b": "q: "}}
    assert resolve_prompts({"anchor": "q: "}, COLUMNS) == {"nli": {"anchor": "q: "}}
    assert resolve_prompts({"sts": "s: "}, COLUMNS) == {"sts": {"sentence1": "s: ", "sentence2": "s: "}}
    got = resolve_prompts({"nli": {"positive": "p: "}, "sentence2": "s: ", "anchor": ""}, COLUMNS)
    assert got == {"nli": {"positive": "p: "}, "sts": {"sentence2": "s: "}}
    with pytest.raises(ValueError, match="'x' names both a dataset and a column"):
        resolve_prompts({"x": "q: "}, {"x": ["a"], "y": ["x"]})
    with pytest.raises(ValueError, match=r"'sentense1' is neither.*did you mean 'sentence1'"):
        resolve_prompts({"sentense1": "q: "}, COLUMNS)


def test_saved_prompt_names():
    """Column names become prompt names; "query" / "document" follow the first / later columns where they agree."""
    resolved = {"nli": {"anchor": "q: ", "positive": "d: ", "negative": "d: "}}
    assert model_prompts(resolved, COLUMNS) == {"anchor": "q: ", "positive": "d: ", "negative": "d: ", "query": "q: ",
                                                "document": "d: "}  # fmt: skip
    # the negative column without a prompt: the later columns disagree, so no "document"
    assert "document" not in model_prompts({"nli": {"anchor": "q: ", "positive": "d: "}}, COLUMNS)
    # a column called "query" keeps its own prompt
    assert model_prompts({"ir": {"doc": "x", "query": "q: "}}, {"ir": ["doc", "query"]})["query"] == "q: "
    # eval datasets get prompts but do not decide what the model saves
    resolved, saved = run_prompts({"sentence1": "s: "}, {"nli": COLUMNS["nli"]}, {"sts": COLUMNS["sts"]})
    assert resolved == {"sts": {"sentence1": "s: "}} and saved == {}
