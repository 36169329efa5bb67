"""Config values that used to pass validation and fail later (issue 14, defects 7 and 8): each is an input error of
``kosim train`` (exit 2, one message naming the file, key and value, no traceback), found before the model is
loaded and before anything is written to ``output_dir``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import kosim.config.runner as runner
from kosim.cli.main import main

CONFIG = """\
[model]
name_or_path = "{model}"
max_seq_length = 32

[[datasets]]
name = "sts"
path = "kosim:KorSTS/sts-train.tsv"
format = "korsts"
max_rows = {rows}
loss = "CosineSimilarityLoss"

[training]
output_dir = "{output}"
per_device_train_batch_size = 16
num_train_epochs = 1
disable_tqdm = true
{extra}
"""


def write_config(tmp_path, bert_dir, extra: str = "", rows: int = 32):
    path = tmp_path / "run.toml"
    text = CONFIG.format(model=bert_dir, output=tmp_path / "out", rows=rows, extra=extra)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def no_model_load(monkeypatch):
    """Loading the model is an error: the checks must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the config error was found")

    monkeypatch.setattr(runner, "load_model", refuse)


def assert_input_error(argv, capsys, *expected: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("kosim train: error: ") and "Traceback" not in err, err
    for text in expected:
        assert text in err, (text, err)
    return err


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('seed = "42"', ["[training]", "TrainingArguments.seed='42'", "must be an int"]),
        ("seed = true", ["TrainingArguments.seed=True"]),
        ("max_steps = true", ["TrainingArguments.max_steps=True", "must be a positive int"]),
        ('device = "cpux"', ["TrainingArguments.device='cpux'", "invalid device 'cpux'"]),
        ("dataloader_drop_last = 1", ["TrainingArguments.dataloader_drop_last=1", "expected true or false"]),
        ("mini_batch_size = true", ["TrainingArguments.mini_batch_size=True"]),
        ("dataloader_num_workers = 2", ["[training] dataloader_num_workers: not supported", "no data-loading workers"]),
    ],
)
def test_bad_training_values_exit_2_before_anything_is_written(
    line, expected, bert_dir, tmp_path, capsys, no_model_load
):
    config = write_config(tmp_path, bert_dir, line)
    err = assert_input_error(["train", str(config)], capsys, *expected)
    assert str(config) in err  # the file is named
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is valid where CUDA is available")
def test_fp16_without_cuda_is_a_config_error_and_the_fixed_rerun_is_not_refused(bert_dir, tmp_path, capsys):
    config = write_config(tmp_path, bert_dir, "fp16 = true\nmax_steps = 1")
    assert_input_error(["train", str(config)], capsys, "[training] fp16: fp16 training needs a CUDA device", "bf16")
    assert not (tmp_path / "out").exists()  # no run_config.json that would refuse the corrected rerun
    assert main(["train", str(config), "--override", "training.fp16=false"]) == 0
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_drop_last_with_fewer_rows_than_a_batch_is_found_before_the_model_loads(
    bert_dir, tmp_path, capsys, no_model_load
):
    config = write_config(tmp_path, bert_dir, "dataloader_drop_last = true", rows=10)
    assert_input_error(
        ["train", str(config)],
        capsys,
        "[[datasets]] 'sts'",
        "sts-train.tsv has 10 rows, fewer than one batch of 16",
        "dataloader_drop_last",
    )
    assert not (tmp_path / "out").exists()


def test_bad_device_in_a_subprocess_has_no_traceback(bert_dir, tmp_path):
    config = write_config(tmp_path, bert_dir, 'device = "cpux"')
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "kosim", "train", str(config)], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "invalid device 'cpux'" in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("command", ["encode", "search"])
def test_bad_device_flag_exits_2(command, bert_dir, tmp_path, capsys):
    texts = tmp_path / "t.txt"
    texts.write_text("가\n나\n", encoding="utf-8")
    argv = [command, "--model", str(bert_dir), "--device", "cpux"]
    argv += ["--input", str(texts), "--output", str(tmp_path / "e.npy")] if command == "encode" else []
    argv += ["--corpus", str(texts), "--query", "가"] if command == "search" else []
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kosim {command}: error: --device: invalid device 'cpux'") and "Traceback" not in err


def test_all_duplicate_rows_under_no_duplicates_exit_2(bert_dir, tmp_path, capsys):
    """40 identical pairs under no_duplicates cannot form one batch of two rows (issue 14, defect 11): exit 2."""
    data = tmp_path / "dup.tsv"
    data.write_text("a\tb\n" + "같은 문장\t같은 답\n" * 40, encoding="utf-8")
    config = tmp_path / "dup.toml"
    config.write_text(
        f'[model]\nname_or_path = "{bert_dir}"\nmax_seq_length = 32\n\n'
        f'[[datasets]]\nname = "dup"\npath = "{data}"\nformat = "tsv"\ncolumns = ["a", "b"]\n'
        'loss = "MultipleNegativesRankingLoss"\n\n'
        f'[training]\noutput_dir = "{tmp_path / "out"}"\nper_device_train_batch_size = 8\n'
        'batch_sampler = "no_duplicates"\nnum_train_epochs = 1\ndisable_tqdm = true\n',
        encoding="utf-8",
    )
    assert_input_error(["train", str(config)], capsys, "at least 2 rows that share no text")
    assert not (tmp_path / "out" / "model.safetensors").exists()
