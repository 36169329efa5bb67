"""TOML run configs: parsing, path resolution, overrides, errors that name the table and key, and one tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kosim.config import (
    CONFIGS_DIR,
    ConfigError,
    apply_overrides,
    load_config,
    parse_config,
    run,
)
from kosim.config.runner import load_dataset, load_model
from kosim.data.resources import KORNLU_DIR


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and a busy 2-core box makes 2 intra-op threads up to 50x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


BASE = """\
[model]
name_or_path = "klue/roberta-base"

[[datasets]]
name = "nli"
path = "kosim:KorNLI/xnli.dev.ko.tsv"
format = "kornli_triplets"
loss = "MultipleNegativesRankingLoss"
loss_args = { scale = 20.0 }

[[evaluators]]
type = "sts"
name = "sts-dev"
path = "kosim:KorSTS/sts-dev.tsv"

[training]
learning_rate = 1e-4
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str, overrides=()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), overrides)
    return str(info.value)


# ------------------------------------------------------------------------------------------------ valid configs
@pytest.mark.parametrize("name", ["nli.toml", "sts.toml"])
def test_bundled_configs_load(name):
    config = load_config(f"kosim:{name}")
    assert config.source == str(CONFIGS_DIR / name)
    for entry in config.datasets + config.eval_datasets + config.evaluators:
        assert entry.path.is_absolute() and entry.path.is_file()
        assert KORNLU_DIR in entry.path.parents
    json.dumps(config.to_dict())  # JSON-ready


def test_bundled_recipes_match_the_seeds():
    nli, sts = load_config("kosim:nli.toml"), load_config("kosim:sts.toml")
    t = nli.training
    assert (t.per_device_train_batch_size, t.num_train_epochs, t.learning_rate, t.warmup_ratio) == (64, 1, 5e-5, 0.0)
    assert (t.batch_sampler, t.multi_dataset_batch_sampler, t.eval_steps) == ("no_duplicates", "round_robin", 1000)
    assert nli.datasets[0].loss == "MultipleNegativesRankingLoss" and nli.datasets[0].loss_args["scale"] == 20.0
    t = sts.training
    assert (t.per_device_train_batch_size, t.num_train_epochs, t.learning_rate, t.warmup_ratio) == (16, 1, 5e-5, 0.1)
    assert sts.datasets[0].loss == "CosineSimilarityLoss" and sts.eval_datasets[0].name == "sts"


def test_defaults_and_relative_paths(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "pairs.tsv").write_text("a\tb\tscore\n안녕\t하세요\t0.5\n", encoding="utf-8")
    (tmp_path / "model").mkdir()
    text = BASE.replace('"klue/roberta-base"', '"model"').replace(
        'path = "kosim:KorNLI/xnli.dev.ko.tsv"\nformat = "kornli_triplets"',
        'path = "data/pairs.tsv"\nformat = "tsv"\ncolumns = ["a", "b"]\nlabel = "score"',
    )
    sub = tmp_path / "conf"
    sub.mkdir()
    with pytest.raises(ConfigError, match="file not found"):  # relative to the TOML's folder, not the cwd
        load_config(write(sub, text))
    config = load_config(write(tmp_path, text))
    assert config.datasets[0].path == (data / "pairs.tsv").resolve()
    assert config.model.name_or_path == str((tmp_path / "model").resolve())  # an existing local dir
    assert config.training.learning_rate == 1e-4 and config.training.output_dir == "output"
    assert config.evaluators[0].similarity_fns == ["cosine"] and config.evaluators[0].format == "korsts"
    data = load_dataset(config.datasets[0])
    assert data.column_names == ["a", "b"] and data.labels.tolist() == [0.5]


def test_hub_ids_stay_as_given():
    config = parse_config({"model": {"name_or_path": "klue/roberta-base"}, "datasets": [_dataset()]}, source="inline")
    assert config.model.name_or_path == "klue/roberta-base"


def _dataset(**extra):
    return {"name": "d", "path": "kosim:KorSTS/sts-dev.tsv", "format": "korsts", "loss": "cosine", **extra}


# ------------------------------------------------------------------------------------------------ errors
def test_unknown_training_key_suggests(tmp_path):
    message = error_of(tmp_path, BASE.replace("learning_rate", "learning_rat"))
    assert (
        message == f"{tmp_path / 'config.toml'}: [training] unknown key 'learning_rat'; did you mean 'learning_rate'?"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'name_or_path = "klue',
            'name_or_pth = "klue',
            "[model] unknown key 'name_or_pth'; did you mean 'name_or_path'?",
        ),
        ("loss_args =", "los_args =", "[[datasets]] #1 unknown key 'los_args'; did you mean 'loss_args'?"),
        ('type = "sts"', 'typ = "sts"', "[[evaluators]] #1 unknown key 'typ'; did you mean 'type'?"),
        ("[training]", "[trainig]", "config.toml: unknown key 'trainig'; did you mean 'training'?"),
        ('format = "kornli_triplets"', 'format = "kornli_triplet"', "did you mean 'kornli_triplets'?"),
        ('type = "sts"', 'type = "stss"', "[[evaluators]] #1 type: unknown value 'stss'"),
    ],
)
def test_unknown_keys_and_values_suggest(tmp_path, old, new, expected):
    assert expected in error_of(tmp_path, BASE.replace(old, new))


def test_missing_file_names_the_key(tmp_path):
    message = error_of(tmp_path, BASE.replace("kosim:KorNLI/xnli.dev.ko.tsv", "nli/missing.tsv"))
    assert "[[datasets]] 'nli' path: file not found" in message and str(tmp_path / "nli" / "missing.tsv") in message
    message = error_of(tmp_path, BASE.replace("kosim:KorSTS/sts-dev.tsv", "kosim:KorSTS/sts-test.tsv"))
    assert "[[evaluators]] 'sts-dev' path: file not found" in message


def test_bad_loss(tmp_path):
    message = error_of(
        tmp_path, BASE.replace('loss = "MultipleNegativesRankingLoss"', 'loss = "MultipleNegativesRankingLos"')
    )
    assert "[[datasets]] 'nli' loss: unknown loss 'MultipleNegativesRankingLos'" in message
    assert "Did you mean 'MultipleNegativesRankingLoss'?" in message
    message = error_of(tmp_path, BASE.replace("scale = 20.0", "scale = -1.0"))
    assert "[[datasets]] 'nli' loss:" in message and "scale" in message
    message = error_of(tmp_path, BASE.replace("scale = 20.0", "scal = 20.0"))
    assert "cannot build MultipleNegativesRankingLoss" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("learning_rate = 1e-4", "learning_rate = -1.0", "[training] TrainingArguments.learning_rate=-1.0"),
        ("learning_rate = 1e-4", 'learning_rate = "fast"', "[training]"),
        ("loss_args = { scale = 20.0 }", 'max_rows = "10"', "[[datasets]] 'nli' max_rows: expected an integer"),
        ("loss_args = { scale = 20.0 }", "max_rows = 0", "max_rows: must be a positive integer"),
        ('format = "kornli_triplets"', 'format = "kornli_triplets"\ncolumns = ["a"]', "has fixed columns"),
        ('name = "sts-dev"', 'name = "sts-dev"\nformat = "kornli_triplets"', "cannot read format 'kornli_triplets'"),
        ('name = "sts-dev"', 'name = "sts-dev"\nsimilarity_fns = ["jaccard"]', "similarity_fns"),
        ('[model]\nname_or_path = "klue/roberta-base"', "model = 3", "config.toml: model: expected a table, got 3"),
        ('name_or_path = "klue/roberta-base"', 'name_or_path = "x"\npooling = "avg"', "unknown pooling mode 'avg'"),
    ],
)
def test_bad_values(tmp_path, old, new, expected):
    assert expected in error_of(tmp_path, BASE.replace(old, new, 1))


def test_structure_errors(tmp_path):
    assert "missing required key 'datasets'" in error_of(tmp_path, '[model]\nname_or_path = "x"\n')
    assert "missing required key 'model'" in error_of(
        tmp_path, BASE.replace('[model]\nname_or_path = "klue/roberta-base"', "")
    )
    assert "names must be unique" in error_of(
        tmp_path, BASE + BASE[BASE.index("[[datasets]]") : BASE.index("[[evaluators]]")]
    )
    eval_with_loss = (
        BASE
        + '[[eval_datasets]]\nname = "nli"\npath = "kosim:KorSTS/sts-dev.tsv"\nformat = "korsts"\nloss = "cosine"\n'
    )
    assert "uses the loss of the training dataset" in error_of(tmp_path, eval_with_loss)
    assert "invalid TOML" in error_of(tmp_path, "[model\n")
    assert "config file not found" in str(pytest.raises(ConfigError, load_config, tmp_path / "nope.toml").value)
    sts_tsv = BASE.replace('name = "sts-dev"', 'name = "x"\nformat = "tsv"\ncolumns = ["sentence1", "sentence2"]')
    assert "needs a score column" in error_of(tmp_path, sts_tsv)


# ------------------------------------------------------------------------------------------------ overrides
def test_overrides(tmp_path):
    path = write(tmp_path, BASE)
    config = load_config(
        path,
        [
            "training.learning_rate=3e-5",
            "training.bf16=true",
            "datasets.nli.max_rows=10",
            "datasets.0.loss_args={ scale = 30.0 }",
            "evaluators.sts-dev.name=dev",
            "model.name_or_path=klue/bert-base",
            "training.output_dir=out dir",
        ],
    )
    assert config.training.learning_rate == 3e-5 and config.training.bf16 is True
    assert config.datasets[0].max_rows == 10 and config.datasets[0].loss_args == {"scale": 30.0}
    assert config.evaluators[0].name == "dev" and config.model.name_or_path == "klue/bert-base"
    assert config.training.output_dir == "out dir"


def test_override_errors(tmp_path):
    path = write(tmp_path, BASE)
    message = str(pytest.raises(ConfigError, load_config, path, ["training.learning_rat=1"]).value)
    assert "[training] unknown key 'learning_rat'; did you mean 'learning_rate'?" in message
    assert "table.key=value" in str(pytest.raises(ConfigError, load_config, path, ["learning_rate=1"]).value)
    assert "no entry 'other'" in str(pytest.raises(ConfigError, load_config, path, ["datasets.other.max_rows=1"]).value)
    assert "pick one entry" in str(pytest.raises(ConfigError, load_config, path, ["datasets.max_rows=1"]).value)


def test_override_paths_are_relative_to_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "mine.tsv").write_text("a\tb\n1\t2\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    raw = apply_overrides({"datasets": [{"name": "x"}]}, ["datasets.x.path=mine.tsv", "datasets.x.format=tsv"])
    assert raw["datasets"][0] == {"name": "x", "path": str(tmp_path / "mine.tsv"), "format": "tsv"}


# ------------------------------------------------------------------------------------------------ model & run
def test_model_pooling_and_length(bert_dir, tmp_path):
    from kosim.config import ModelConfig

    model = load_model(ModelConfig(str(bert_dir), max_seq_length=16, pooling=["cls"]))
    assert model.pooling.modes == ("cls",) and model.max_seq_length == 16
    with pytest.raises(ConfigError, match="max_seq_length"):
        load_model(ModelConfig(str(bert_dir), max_seq_length=4096))
    model.save(tmp_path / "st")
    with pytest.raises(ConfigError, match="its own pooling"):
        load_model(ModelConfig(str(tmp_path / "st"), pooling=["mean"]))


def test_run_end_to_end(bert_dir, tmp_path):
    raw = {
        "model": {"name_or_path": str(bert_dir), "max_seq_length": 32},
        "datasets": [_dataset(name="sts", max_rows=16)],
        "eval_datasets": [{"name": "sts", "path": "kosim:KorSTS/sts-dev.tsv", "format": "korsts", "max_rows": 16}],
        "evaluators": [
            {"type": "sts", "name": "dev", "path": "kosim:KorSTS/sts-dev.tsv", "max_rows": 16},
            {"type": "triplet", "name": "nli", "path": "kosim:KorNLI/xnli.dev.ko.tsv", "max_rows": 8, "during_training": False},
        ],
        "training": {"output_dir": str(tmp_path / "out"), "per_device_train_batch_size": 8, "num_train_epochs": 1,
                     "disable_tqdm": True, "logging_steps": 1},
    }  # fmt: skip
    messages: list[str] = []
    result = run(parse_config(raw, source="inline"), log=messages.append)
    keys = {"validation_loss", "dev_pearson_cosine", "dev_spearman_cosine", "nli_cosine_accuracy"}
    assert set(result["before"]) == keys and set(result["after"]) == keys
    assert result["output_dir"] == str(tmp_path / "out") and result["train_seconds"] > 0
    assert (tmp_path / "out" / "modules.json").is_file() and (tmp_path / "out" / "README.md").is_file()
    assert any(m.startswith("before:") for m in messages) and any(m.startswith("after:") for m in messages)
