"""`kosim quickstart` end to end on a shrunken copy of its config (the real one is too long for the suite)."""

from __future__ import annotations

import numpy as np
import pytest

from kosim.config import ConfigError
from kosim.config.quickstart import DEFAULT_CONFIG, run_quickstart
from kosim.model import SentenceEncoder


def _small_config(tmp_path):
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    for old, new in [
        ("vocab_size = 8000", "vocab_size = 1000"),
        ("hidden_size = 256", "hidden_size = 32"),
        ("num_hidden_layers = 4", "num_hidden_layers = 1"),
        ("intermediate_size = 1024", "intermediate_size = 64"),
        ("num_train_epochs = 2", "num_train_epochs = 1"),
        ('format = "kornli_triplets"', 'format = "kornli_triplets"\nmax_rows = 64'),
        ('format = "korsts"\nloss', 'format = "korsts"\nmax_rows = 64\nloss'),
        ('path = "kosim:KorSTS/sts-dev.tsv"', 'path = "kosim:KorSTS/sts-dev.tsv"\nmax_rows = 100'),
        ('source = "kornli"', 'source = "kornli"\npath = "kornli-small.tsv"'),  # 300 rows: a corpus of ~300
        ("relative_margin = 0.05", "max_rows = 32"),  # a barely trained model scores all candidates alike
        ('bf16 = "auto"', "bf16 = false\ndisable_tqdm = true"),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    from kosim.data import kornli_path

    lines = kornli_path("dev").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "kornli-small.tsv").write_text("".join(lines[:301]), encoding="utf-8")
    path = tmp_path / "quick.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_quickstart_trains_saves_and_loads_in_sentence_transformers(tmp_path):
    result = run_quickstart(_small_config(tmp_path), tmp_path / "out", log=lambda m: None)
    for key in ("sts-dev_spearman_cosine", "kornli-dev_cosine_ndcg@10"):
        assert key in result["untrained"] and key in result["trained"]
    assert result["untrained"] != result["trained"]
    assert (tmp_path / "out" / "retrieval" / "mined-mined.jsonl").is_file()
    model_dir = tmp_path / "out" / "model"
    assert (model_dir / "README.md").is_file() and (model_dir / "modules.json").is_file()
    assert (
        not (model_dir / "mining-cache").exists() and "Information Retrieval" in (model_dir / "README.md").read_text()
    )
    ours = SentenceEncoder.load(model_dir)
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(str(model_dir), device="cpu")
    texts = ["한 남자가 음식을 먹고 있다.", "비행기가 이륙하고 있다."]
    assert np.abs(ours.encode(texts) - ref.encode(texts)).max() <= 1e-5


def test_quickstart_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[scratch]\nvocab = 10\n[[stages]]\nname = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[scratch\] unknown key 'vocab'"):
        run_quickstart(bad, tmp_path / "out")
