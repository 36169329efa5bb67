"""The quickstart is reproducible (issue 14, defect 13): the same config and seed give the same tokenizer, the same
weights and the same scores in two processes, even with different string-hash seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_quickstart import _small_config

ROOT = Path(__file__).resolve().parent.parent

TOKENIZER = """
import sys
from kosim.config.quickstart import corpus_texts
from kosim.config.scratch import train_wordpiece
from kosim.data import kornli_path, korsts_path

texts = corpus_texts([korsts_path("train"), kornli_path("dev")])
train_wordpiece(texts, vocab_size=8000).save_pretrained(sys.argv[1])
"""

QUICKSTART = """
import json, sys
from kosim.config.quickstart import run_quickstart

result = run_quickstart(sys.argv[1], sys.argv[2], log=lambda m: None)
print(json.dumps({k: result[k] for k in ("untrained", "trained")}))
"""


def run_python(code: str, *args: str, hash_seed: str) -> str:
    env = {
        **os.environ,
        "PYTHONHASHSEED": hash_seed,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_wordpiece_vocabulary_is_the_same_in_every_process(tmp_path):
    """The quickstart's real tokenizer settings (8,000 pieces on KorSTS train + KorNLI dev): identical files."""
    for seed in ("1", "2"):
        run_python(TOKENIZER, str(tmp_path / seed), hash_seed=seed)
    first, second = (json.loads((tmp_path / s / "tokenizer.json").read_text(encoding="utf-8")) for s in ("1", "2"))
    assert len(first["model"]["vocab"]) == 8000
    assert first == second


@pytest.mark.slow
def test_quickstart_gives_the_same_model_and_scores_in_two_processes(tmp_path):
    config = _small_config(tmp_path)
    outputs = [run_python(QUICKSTART, str(config), str(tmp_path / seed), hash_seed=seed) for seed in ("3", "4")]
    assert json.loads(outputs[0]) == json.loads(outputs[1])
    for name in ("tokenizer.json", "model.safetensors"):
        assert (tmp_path / "3" / "model" / name).read_bytes() == (tmp_path / "4" / "model" / name).read_bytes(), name
