"""kosim's Trainer takes training data as Hugging Face users hold it: a `datasets.Dataset`, a `DatasetDict` or a
plain dict of columns (sentence-transformers' label rule), and trains exactly as on the equivalent ColumnDatasets."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from helpers import KOREAN

from kosim.data import ColumnDataset
from kosim.data.columns import named_datasets, to_column_dataset
from kosim.losses import CoSENTLoss, MultipleNegativesRankingLoss
from kosim.model import SentenceEncoder
from kosim.training import Trainer, TrainingArguments

ANCHORS = [f"{t} {i}" for i, t in enumerate(KOREAN)]
POSITIVES = [t[::-1] for t in ANCHORS]
SCORES = [0.0, 0.25, 0.5, 0.75, 1.0, 0.5, 0.25, 0.0]


def _train(bert_dir, out, train, loss, eval_dataset=None):
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=4, max_steps=2, logging_steps=1, disable_tqdm=True
    )
    trainer = Trainer(SentenceEncoder.load(bert_dir), args, train, loss, eval_dataset=eval_dataset)
    trainer.train()
    return trainer


def _same_weights(a, b):
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        torch.testing.assert_close(p, q, atol=0, rtol=0, msg=name)


def test_dict_of_columns_trains_as_its_column_dataset(bert_dir, tmp_path):
    # the score column is the label wherever it stands; the other columns are the inputs, in order
    columns = {"score": SCORES, "sentence1": ANCHORS, "sentence2": POSITIVES}
    reference = ColumnDataset({"sentence1": ANCHORS, "sentence2": POSITIVES}, labels=SCORES)
    got = _train(bert_dir, tmp_path / "dict", columns, CoSENTLoss())
    expected = _train(bert_dir, tmp_path / "ref", reference, CoSENTLoss())
    _same_weights(got, expected)
    assert got.train_datasets["train"].column_names == ["sentence1", "sentence2"]


def test_hf_dataset_and_dataset_dict(bert_dir, tmp_path):
    datasets = pytest.importorskip("datasets")
    pairs = datasets.Dataset.from_dict({"anchor": ANCHORS, "positive": POSITIVES})
    scored = datasets.Dataset.from_dict({"sentence1": ANCHORS, "sentence2": POSITIVES, "label": SCORES})
    one = _train(bert_dir, tmp_path / "one", pairs, MultipleNegativesRankingLoss(), eval_dataset=pairs)
    reference = ColumnDataset({"anchor": ANCHORS, "positive": POSITIVES})
    _same_weights(one, _train(bert_dir, tmp_path / "ref", reference, MultipleNegativesRankingLoss()))
    losses = {"pairs": MultipleNegativesRankingLoss(), "scored": CoSENTLoss()}
    several = _train(bert_dir, tmp_path / "dict", datasets.DatasetDict({"pairs": pairs, "scored": scored}), losses)
    assert list(several.train_datasets) == ["pairs", "scored"]
    np.testing.assert_allclose(several.train_datasets["scored"].labels, SCORES)
    assert several.train_datasets["pairs"].labels is None


def test_a_shuffled_selection_is_read_in_its_order():
    datasets = pytest.importorskip("datasets")
    data = datasets.Dataset.from_dict({"text": ANCHORS, "labels": list(range(8))}).select([5, 1, 2])
    converted = to_column_dataset(data)
    assert converted.column("text") == [ANCHORS[5], ANCHORS[1], ANCHORS[2]]
    np.testing.assert_allclose(converted.labels, [5, 1, 2])


def test_datasets_is_imported_only_when_given():
    import subprocess

    code = (
        "import sys; from kosim.data.columns import named_datasets; import kosim.training; "
        "named_datasets({'a': ['x']}); print('datasets' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ({"anchor": ["a", "b"], "label": [1, 2], "score": [0.1, 0.2]}, ValueError, "both a 'label' and a 'score'"),
        ({"anchor": ["a"], "label": ["entailment"]}, ValueError, "'label' must hold numbers"),
        ({"label": [1.0]}, ValueError, "no text column"),
        ({"anchor": "one text"}, TypeError, "column 'anchor' must be a list"),
        ({"anchor": ["a", 3]}, TypeError, "column 'anchor', row 1"),
        ([("a", "b")], TypeError, "datasets.Dataset"),
        ({"pairs": ColumnDataset({"a": ["x"]}), "anchor": ["y"]}, TypeError, "'pairs' is a dataset"),
    ],
)
def test_bad_data_is_refused_naming_it(data, error, match):
    with pytest.raises(error, match=match):
        named_datasets(data)


def test_trainer_refuses_bad_data_when_built(bert_dir, tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1)
    with pytest.raises(ValueError, match="'score' must hold numbers"):
        Trainer(SentenceEncoder.load(bert_dir), args, {"a": ["x"], "score": ["high"]}, CoSENTLoss())


def test_core_trainer_trains_a_kosim_st_model_as_a_core_model(bert_dir, tmp_path):
    # kosim.st's SentenceTransformer overrides tokenize (padded tensors) and save (ST's keywords); kosim's Trainer,
    # checkpoints and card must use kosim's own versions, so both models train and save identically.
    pytest.importorskip("sentence_transformers")
    from kosim.st import SentenceTransformer

    columns = {"anchor": ANCHORS, "positive": POSITIVES}
    runs = {}
    for name, model in (
        ("st", SentenceTransformer(str(bert_dir), device="cpu")),
        ("core", SentenceEncoder.load(bert_dir)),
    ):
        args = TrainingArguments(
            output_dir=str(tmp_path / name), per_device_train_batch_size=4, max_steps=2, save_steps=1, disable_tqdm=True
        )
        runs[name] = Trainer(model, args, columns, MultipleNegativesRankingLoss())
        runs[name].train()
    _same_weights(runs["st"], runs["core"])
    cards = {
        n: (tmp_path / n / "README.md").read_text(encoding="utf-8").replace(str(tmp_path / n), "OUT") for n in runs
    }
    assert cards["st"] == cards["core"]
    assert (tmp_path / "st" / "checkpoint-1" / "model.safetensors").is_file()


def test_vector_labels_of_a_dict_or_dataset_reach_marginmse(bert_dir, tmp_path):
    # mined rows with output_scores: the "scores" column holds [positive, negative...] teacher scores per row
    from kosim.losses import MarginMSELoss

    scores = [[0.9 - 0.01 * i, 0.2 + 0.01 * i] for i in range(len(ANCHORS))]
    columns = {"query": ANCHORS, "positive": POSITIVES, "negative": POSITIVES[::-1], "scores": scores}
    data = to_column_dataset(columns)
    np.testing.assert_allclose(data.labels, scores)
    assert data.column_names == ["query", "positive", "negative"]
    reference = ColumnDataset({k: v for k, v in columns.items() if k != "scores"}, labels=scores)
    _same_weights(
        _train(bert_dir, tmp_path / "dict", columns, MarginMSELoss()),
        _train(bert_dir, tmp_path / "ref", reference, MarginMSELoss()),
    )
    with pytest.raises(ValueError, match="'scores' must hold numbers.*ragged"):
        to_column_dataset({"query": ["a", "b"], "scores": [[1.0, 2.0], [1.0]]})
