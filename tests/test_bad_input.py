"""Every public entry point rejects bad input with a clear exception whose message names what is wrong.

One table: ``(id, trigger, exception type, regex the message must match)``. A trigger takes a ``Ctx`` (a
``tmp_path`` and the tiny BERT, loaded once per module) and must raise. CLI cases run ``python -m kosim`` in a
subprocess and raise ``CliUsageError`` only when it exits with code 2 without a traceback.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kosim.config import ConfigError, load_config
from kosim.data import (
    ColumnDataset,
    DataError,
    NoDuplicatesBatchSampler,
    read_kornli_triplets,
    read_korsts,
)
from kosim.losses import CosineSimilarityLoss, MatryoshkaLoss, MultipleNegativesRankingLoss, build_loss
from kosim.model import SentenceEncoder
from kosim.training.arguments import TrainingArguments

KORSTS_HEADER = "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n"
PAIR_HEADER = "sentence1\tsentence2\tscore\n"
CONFIG = """\
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


class CliUsageError(Exception):
    """A CLI run that exited with code 2 and no traceback; the message is its stderr."""


class Ctx:
    def __init__(self, tmp: Path, model: SentenceEncoder, model_dir: Path):
        self.tmp, self.model, self.model_dir = tmp, model, model_dir

    def write(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return path


def cli(ctx: Ctx, *args: str) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(
        [sys.executable, "-m", "kosim", *args], capture_output=True, text=True, cwd=ctx.tmp, env=env, timeout=120
    )
    assert proc.returncode == 2, f"exit code {proc.returncode}, stderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    raise CliUsageError(proc.stderr)


def emb(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


def config(ctx: Ctx, text: str):
    return load_config(ctx.write("run.toml", text))


CASES = [
    # ---------------------------------------------------------------- SentenceEncoder.encode / similarity
    ("encode-non-str-item", lambda c: c.model.encode(["가", 3, "나"]), TypeError, r"texts\[1\] must be a str.*int"),
    ("encode-bytes", lambda c: c.model.encode(b"abc"), TypeError, r"str or a list of str, got bytes"),
    ("encode-bytes-item", lambda c: c.model.encode(["가", b"x"]), TypeError, r"texts\[1\] must be a str.*bytes"),
    ("encode-none", lambda c: c.model.encode(None), TypeError, r"str or a list of str, got NoneType"),
    ("encode-none-item", lambda c: c.model.encode([None]), TypeError, r"texts\[0\] must be a str.*NoneType"),
    ("encode-batch-size-0", lambda c: c.model.encode(["가"], batch_size=0), ValueError, r"batch_size.*positive.*0"),
    ("encode-batch-size-bool", lambda c: c.model.encode(["가"], batch_size=True), ValueError, r"batch_size.*True"),
    ("encode-batch-size-float", lambda c: c.model.encode(["가"], batch_size=2.5), ValueError, r"batch_size.*2\.5"),
    ("encode-dtype", lambda c: c.model.encode(["가"], dtype="float64"), ValueError, r"dtype must be one of.*float64"),
    ("encode-to", lambda c: c.model.encode(["가"], to="list"), ValueError, r"to must be 'numpy' or 'torch'"),
    ("encode-prompt-name", lambda c: c.model.encode(["가"], prompt_name="query"), KeyError, r"prompt_name 'query'"),
    (
        "similarity-fn",
        lambda c: c.model.similarity(emb(2, 4), emb(3, 4), fn="cosin"),
        ValueError,
        r"unknown similarity function 'cosin'.*cosine",
    ),
    (
        "max-seq-length-beyond-positions",
        lambda c: setattr(c.model, "max_seq_length", 100_000),
        ValueError,
        r"max_seq_length must be an int in \[2, 64\], got 100000",
    ),
    ("max-seq-length-1", lambda c: setattr(c.model, "max_seq_length", 1), ValueError, r"max_seq_length.*got 1"),
    # ---------------------------------------------------------------- ColumnDataset
    (
        "dataset-column-lengths",
        lambda c: ColumnDataset({"anchor": ["a", "b"], "positive": ["c"]}),
        ValueError,
        r"column 'positive' has 1 rows but column 'anchor' has 2",
    ),
    (
        "dataset-non-str",
        lambda c: ColumnDataset({"anchor": ["a", "b"], "positive": ["c", 7]}),
        TypeError,
        r"column 'positive', row 1: expected str, got int",
    ),
    (
        "dataset-single-str-column",
        lambda c: ColumnDataset({"anchor": "abc"}),
        TypeError,
        r"column 'anchor' must be a sequence of strings",
    ),
    (
        "dataset-nan-label",
        lambda c: ColumnDataset({"a": ["x", "y", "z"]}, labels=[0.1, math.nan, 0.3]),
        ValueError,
        r"label at index 1 is not finite",
    ),
    (
        "dataset-inf-label",
        lambda c: ColumnDataset({"a": ["x", "y"]}, labels=[0.1, math.inf]),
        ValueError,
        r"label at index 1 is not finite",
    ),
    (
        "dataset-label-count",
        lambda c: ColumnDataset({"a": ["x", "y"]}, labels=[0.1]),
        ValueError,
        r"got 1 labels for 2 rows",
    ),
    ("dataset-no-columns", lambda c: ColumnDataset({}), ValueError, r"at least one text column"),
    # ---------------------------------------------------------------- readers
    (
        "tsv-missing-column",
        lambda c: ColumnDataset.from_tsv(
            c.write("p.tsv", PAIR_HEADER + "a\tb\t1\n"), columns=["sentence1", "sentnce2"]
        ),
        DataError,
        r"p\.tsv:1: .*'sentnce2' not found.*did you mean 'sentence2'",
    ),
    (
        "tsv-non-numeric-score",
        lambda c: ColumnDataset.from_tsv(c.write("p.tsv", PAIR_HEADER + "a\tb\t1\nc\td\thigh\n"), label="score"),
        DataError,
        r"p\.tsv:3: label column 'score' has non-numeric value 'high'",
    ),
    (
        "tsv-nan-score",
        lambda c: ColumnDataset.from_tsv(c.write("p.tsv", PAIR_HEADER + "a\tb\tnan\n"), label="score"),
        DataError,
        r"p\.tsv:2: label column 'score' is not finite",
    ),
    (
        "tsv-empty-text",
        lambda c: ColumnDataset.from_tsv(c.write("p.tsv", PAIR_HEADER + "a\tb\t1\na\t  \t2\n"), label="score"),
        DataError,
        r"p\.tsv:3: empty text in column 'sentence2'",
    ),
    (
        "tsv-field-count",
        lambda c: ColumnDataset.from_tsv(c.write("p.tsv", PAIR_HEADER + "a\tb\n"), label="score"),
        DataError,
        r"p\.tsv:2: expected 3 fields",
    ),
    ("tsv-empty-file", lambda c: ColumnDataset.from_tsv(c.write("e.tsv", "")), DataError, r"e\.tsv: empty file"),
    (
        "tsv-header-only",
        lambda c: ColumnDataset.from_tsv(c.write("h.tsv", PAIR_HEADER)),
        DataError,
        r"h\.tsv: no data rows",
    ),
    (
        "jsonl-invalid",
        lambda c: ColumnDataset.from_jsonl(c.write("d.jsonl", '{"a": "x"}\n{"a": \n')),
        DataError,
        r"d\.jsonl:2: invalid JSON",
    ),
    (
        "korsts-score-out-of-range",
        lambda c: read_korsts(c.write("s.tsv", KORSTS_HEADER + "g\tf\ty\t0\t3.0\ta\tb\ng\tf\ty\t1\t7.5\tc\td\n")),
        DataError,
        r"s\.tsv:3: score 7\.5 is outside \[0, 5\]",
    ),
    (
        "korsts-negative-score",
        lambda c: read_korsts(c.write("s.tsv", KORSTS_HEADER + "g\tf\ty\t0\t-1\ta\tb\n")),
        DataError,
        r"s\.tsv:2: score .*-1\.0.* is outside \[0, 5\]",
    ),
    (
        "kornli-bad-label",
        lambda c: read_kornli_triplets(c.write("n.tsv", "sentence1\tsentence2\tgold_label\na\tb\tmaybe\n")),
        DataError,
        r"n\.tsv:2: unknown gold_label 'maybe'",
    ),
    # ---------------------------------------------------------------- losses
    (
        "mnrl-one-column",
        lambda c: MultipleNegativesRankingLoss()([emb(4, 8)]),
        ValueError,
        r"MultipleNegativesRankingLoss needs at least 2 embedding columns, got 1",
    ),
    (
        "mnrl-batch-mismatch",
        lambda c: MultipleNegativesRankingLoss()([emb(4, 8), emb(3, 8)]),
        ValueError,
        r"embedding column 1 has batch size 3, but column 0 has 4",
    ),
    (
        "mnrl-dim-mismatch",
        lambda c: MultipleNegativesRankingLoss()([emb(4, 8), emb(4, 6)]),
        ValueError,
        r"embedding column 1 has embedding dim 6, but column 0 has 8",
    ),
    (
        "mnrl-bare-tensor",
        lambda c: MultipleNegativesRankingLoss()(emb(4, 8)),
        TypeError,
        r"expects a list of \[batch, dim\] tensors",
    ),
    (
        "cosine-no-labels",
        lambda c: CosineSimilarityLoss()([emb(4, 8), emb(4, 8)]),
        ValueError,
        r"CosineSimilarityLoss needs labels",
    ),
    (
        "cosine-nan-label",
        lambda c: CosineSimilarityLoss()([emb(3, 8), emb(3, 8)], torch.tensor([0.1, 0.2, math.nan])),
        ValueError,
        r"label at index 2 is not finite",
    ),
    (
        "cosine-label-count",
        lambda c: CosineSimilarityLoss()([emb(3, 8), emb(3, 8)], torch.tensor([0.1, 0.2])),
        ValueError,
        r"needs 3 labels",
    ),
    (
        "cosent-nan-label",
        lambda c: build_loss("cosent")([emb(3, 8), emb(3, 8)], torch.tensor([math.nan, 0.2, 0.3])),
        ValueError,
        r"CoSENTLoss: label at index 0 is not finite",
    ),
    (
        "matryoshka-dims",
        lambda c: MatryoshkaLoss(MultipleNegativesRankingLoss(), dims=[8, 8]),
        ValueError,
        r"dims must be distinct",
    ),
    (
        "build-loss-unknown",
        lambda c: build_loss("MultipleNegativesRankinLoss"),
        ValueError,
        r"unknown loss 'MultipleNegativesRankinLoss'.*Did you mean 'MultipleNegativesRankingLoss'",
    ),
    # ---------------------------------------------------------------- samplers
    (
        "no-duplicates-batch-too-big",
        lambda c: NoDuplicatesBatchSampler(ColumnDataset({"a": ["x", "y", "z"]}), batch_size=8, drop_last=True),
        ValueError,
        r"batch_size=8 .*len=3",
    ),
    (
        "no-duplicates-valid-columns",
        lambda c: NoDuplicatesBatchSampler(ColumnDataset({"anchor": ["x"]}), batch_size=1, valid_columns=["anchr"]),
        ValueError,
        r"no column 'anchr'.*did you mean 'anchor'",
    ),
    # ---------------------------------------------------------------- TrainingArguments
    (
        "args-batch-size",
        lambda c: TrainingArguments(per_device_train_batch_size=0),
        ValueError,
        r"TrainingArguments\.per_device_train_batch_size=0: must be a positive int",
    ),
    (
        "args-learning-rate",
        lambda c: TrainingArguments(learning_rate=-1e-5),
        ValueError,
        r"TrainingArguments\.learning_rate=-1e-05",
    ),
    (
        "args-nan-learning-rate",
        lambda c: TrainingArguments(learning_rate=math.nan),
        ValueError,
        r"TrainingArguments\.learning_rate=nan",
    ),
    (
        "args-warmup-ratio",
        lambda c: TrainingArguments(warmup_ratio=1.5),
        ValueError,
        r"TrainingArguments\.warmup_ratio=1\.5: must be in \[0, 1\]",
    ),
    (
        "args-scheduler",
        lambda c: TrainingArguments(lr_scheduler_type="cosine"),
        ValueError,
        r"TrainingArguments\.lr_scheduler_type='cosine': expected one of",
    ),
    (
        "args-fp16-and-bf16",
        lambda c: TrainingArguments(fp16=True, bf16=True),
        ValueError,
        r"fp16 and bf16 cannot both be on",
    ),
    (
        "args-warmup-ratio-str",
        lambda c: TrainingArguments(warmup_ratio="0.1"),
        ValueError,
        r"TrainingArguments\.warmup_ratio='0\.1'",
    ),
    (
        "args-max-tokens-str",
        lambda c: TrainingArguments(max_tokens_per_batch="4096"),
        ValueError,
        r"TrainingArguments\.max_tokens_per_batch='4096'",
    ),
    (
        "args-from-dict-unknown",
        lambda c: TrainingArguments.from_dict({"learning_rat": 1e-4}),
        ValueError,
        r"unknown training argument 'learning_rat'; did you mean 'learning_rate'\?",
    ),
    # ---------------------------------------------------------------- TOML run config
    (
        "config-unknown-training-key",
        lambda c: config(c, CONFIG.replace("learning_rate", "learning_rat")),
        ConfigError,
        r"run\.toml: \[training\] unknown key 'learning_rat'; did you mean 'learning_rate'\?",
    ),
    (
        "config-unknown-table",
        lambda c: config(c, CONFIG.replace("[training]", "[trainig]")),
        ConfigError,
        r"unknown key 'trainig'; did you mean 'training'\?",
    ),
    (
        "config-missing-data-file",
        lambda c: config(c, CONFIG.replace("kosim:KorNLI/xnli.dev.ko.tsv", "data/missing.tsv")),
        ConfigError,
        r"\[\[datasets\]\] 'nli' path: file not found: .*missing\.tsv",
    ),
    (
        "config-bad-format",
        lambda c: config(c, CONFIG.replace('"kornli_triplets"', '"kornli_triplet"')),
        ConfigError,
        r"format: unknown value 'kornli_triplet'.*did you mean 'kornli_triplets'\?",
    ),
    # ---------------------------------------------------------------- CLI
    (
        "cli-encode-missing-input",
        lambda c: cli(c, "encode", "--model", str(c.model_dir), "--input", "missing.txt", "--output", "x.npy"),
        CliUsageError,
        r"file not found: missing\.txt",
    ),
    (
        "cli-encode-empty-line",
        lambda c: cli(
            c,
            "encode",
            "--model",
            str(c.model_dir),
            "--input",
            str(c.write("in.txt", "가\n\n나\n")),
            "--output",
            "x.npy",
        ),
        CliUsageError,
        r"in\.txt:2: empty line",
    ),
]


@pytest.fixture(scope="module")
def model(bert_dir) -> SentenceEncoder:
    return SentenceEncoder.load(bert_dir)


@pytest.mark.parametrize(
    ("trigger", "exc", "pattern"),
    [case if hasattr(case, "marks") else pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_is_rejected_clearly(trigger, exc, pattern, tmp_path, model, bert_dir):
    ctx = Ctx(tmp_path, model, bert_dir)
    before = model.max_seq_length
    try:
        with pytest.raises(exc, match=pattern):
            trigger(ctx)
    finally:
        model.max_seq_length = before
