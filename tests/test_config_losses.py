"""Run configs with losses that need more than embeddings: GISTEmbedLoss's ``guide`` and SoftmaxLoss on KorNLI
class labels (``format = "kornli_pairs"``), checked at parse time and run end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import build_checkpoint

from kosim.config import ConfigError, parse_config, run
from kosim.config.runner import load_dataset
from kosim.data import kornli_path, read_kornli_pairs
from kosim.data.readers import NLI_LABELS
from kosim.losses.softmax import HEAD_FILE

NLI = "kosim:KorNLI/xnli.dev.ko.tsv"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _raw(model, out, **dataset):
    return {
        "model": {"name_or_path": str(model), "max_seq_length": 32},
        "datasets": [{"name": "nli", "path": NLI, "max_rows": 16, **dataset}],
        "training": {"output_dir": str(out), "per_device_train_batch_size": 8, "max_steps": 2, "disable_tqdm": True,
                     "logging_steps": 1},
    }  # fmt: skip


def test_kornli_pairs_reads_class_labels():
    data = read_kornli_pairs(kornli_path("dev"))
    assert data.column_names == ["premise", "hypothesis"]
    lines = kornli_path("dev").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    first = dict(zip(header, lines[1].split("\t")))
    assert data.column("premise")[0] == first["sentence1"].strip()
    assert data.labels[0] == NLI_LABELS.index(first["gold_label"].strip())
    assert set(np.unique(data.labels)) == {0.0, 1.0, 2.0} and len(data) == len(lines) - 1


def test_guide_is_checked_at_parse_time(tmp_path):
    with pytest.raises(ConfigError, match=r"'nli' loss: GISTEmbedLoss needs a guide model"):
        parse_config(_raw("m", tmp_path, format="kornli_triplets", loss="GISTEmbedLoss"))
    with pytest.raises(ConfigError, match=r"guide: MultipleNegativesRankingLoss takes no guide"):
        parse_config(_raw("m", tmp_path, format="kornli_triplets", loss="MultipleNegativesRankingLoss", guide="g"))
    with pytest.raises(ConfigError, match=r"embedding_dimension is taken from the model"):
        parse_config(
            _raw("m", tmp_path, format="kornli_pairs", loss="SoftmaxLoss",
                 loss_args={"num_labels": 3, "embedding_dimension": 8})
        )  # fmt: skip
    with pytest.raises(ConfigError, match=r"'kornli_pairs' has fixed columns"):
        parse_config(_raw("m", tmp_path, format="kornli_pairs", loss="SoftmaxLoss", label="x"))


def test_gist_config_runs_with_its_guide(bert_dir, tmp_path_factory, tmp_path):
    guide = build_checkpoint(tmp_path_factory.mktemp("guide"), "bert", seed=1, hidden_size=16, intermediate_size=32)
    config = parse_config(
        _raw(bert_dir, tmp_path / "out", format="kornli_triplets", loss="GISTEmbedLoss", guide=guide.name),
        base_dir=guide.parent,  # a relative guide path is resolved against the config's directory
    )
    assert config.datasets[0].guide == str(guide.resolve())
    run(config, log=lambda message: None)
    card = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "GISTEmbedLoss" in card and str(guide.resolve()) in card


def test_softmax_config_trains_and_saves_its_head(bert_dir, tmp_path):
    raw = _raw(bert_dir, tmp_path / "out", format="kornli_pairs", loss="SoftmaxLoss", loss_args={"num_labels": 3})
    config = parse_config(raw)
    assert load_dataset(config.datasets[0]).labels.max() <= 2
    run(config, log=lambda message: None)
    assert (tmp_path / "out" / HEAD_FILE).is_file()
    assert HEAD_FILE in (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
