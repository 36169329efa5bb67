"""`kosim quickstart`: train a Korean sentence encoder offline, from the bundled data only.

Reads a TOML file (default `kosim/configs/quickstart.toml`): `[scratch]` builds the start model (WordPiece
tokenizer + small BERT, see `kosim.config.scratch`), then each `[[stages]]` table is an ordinary run config,
validated by `kosim.config.parse_config` and run by `kosim.config.runner.run_config` (the same Trainer, losses
and samplers as any `kosim train`), starting from the previous stage's saved model. The same config gives the
same tokenizer, weights and scores in every process on the same machine.
"""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kosim.config.files import CONFIGS_DIR, config_file, read_toml, resolve_path
from kosim.config.parse import parse_config
from kosim.config.schema import ConfigError
from kosim.utils.log import log as stderr_log
from kosim.utils.suggest import did_you_mean

DEFAULT_CONFIG = CONFIGS_DIR / "quickstart.toml"
SCRATCH_KEYS = (
    "tokenizer_corpus",
    "vocab_size",
    "max_seq_length",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "seed",
)


def _read(path: Path) -> dict[str, Any]:
    """The quickstart TOML, its top-level and ``[scratch]`` keys checked (each stage is checked as a run config)."""
    raw = read_toml(path)
    for key in raw:
        if key not in ("scratch", "output", "evaluators", "stages"):
            raise ConfigError(f"{path}: unknown top-level key {key!r} (expected scratch, output, evaluators, stages)")
    for key in raw.get("scratch", {}):
        if key not in SCRATCH_KEYS:
            raise ConfigError(f"{path}: [scratch] unknown key {key!r}{did_you_mean(key, SCRATCH_KEYS)}")
    if not raw.get("stages"):
        raise ConfigError(f"{path}: [[stages]] needs at least one stage")
    return raw


def corpus_texts(paths: list[Path]) -> list[str]:
    """Distinct sentences (columns sentence1 and sentence2, as in KorSTS and KorNLI files), in first-seen order."""
    from kosim.data import ColumnDataset

    seen: dict[str, None] = {}
    for path in paths:
        data = ColumnDataset.from_tsv(path, columns=["sentence1", "sentence2"])
        seen.update(dict.fromkeys(data.column("sentence1") + data.column("sentence2")))
    return list(seen)


def run_quickstart(
    config_path: str | Path | None = None,
    output_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build, train stage by stage, evaluate; returns `{"untrained": ..., "trained": ..., "output_dir": ...}`."""
    from kosim.config.runner import run_config
    from kosim.config.scratch import new_bert

    log = log or stderr_log
    path = config_file(config_path if config_path is not None else DEFAULT_CONFIG)
    raw = _read(path)
    base = path.parent.resolve()
    scratch = dict(raw.get("scratch", {}))
    out = Path(output_dir or raw.get("output", {}).get("dir", "output/quickstart")).resolve()
    start = time.perf_counter()

    corpus = [resolve_path(p, base) for p in scratch.pop("tokenizer_corpus", [])]
    if not corpus:
        raise ConfigError(f"{path}: [scratch] tokenizer_corpus lists no files")
    texts = corpus_texts(corpus)
    log(f"training a WordPiece tokenizer on {len(texts)} sentences and building a small BERT")
    model = new_bert(texts, **scratch)
    previous = out / "untrained"
    model.save(previous)

    # resolve data paths of evaluators/stages against this file, then run each stage as a normal config
    untrained: dict[str, float] = {}
    trained: dict[str, float] = {}
    for i, stage in enumerate(raw["stages"]):
        stage = copy.deepcopy(stage)
        name = stage.pop("name", f"stage{i + 1}")
        training = stage.setdefault("training", {})
        training.setdefault("output_dir", str(out / name))
        training.setdefault("overwrite_output_dir", True)
        stage_raw = {"model": {"name_or_path": str(previous)}, "evaluators": raw.get("evaluators", []), **stage}
        config = parse_config(stage_raw, base_dir=base, source=f"{path} [[stages]] {name!r}")
        log(f"stage {i + 1}/{len(raw['stages'])}: {name}")
        result = run_config(config, log)
        if i == 0:
            untrained = result["before"]
        trained = result["after"]
        previous = Path(result["output_dir"])
    final = out / "model"
    if final.exists():
        shutil.rmtree(final)
    shutil.copytree(
        previous, final, ignore=shutil.ignore_patterns("checkpoint-*", "run_config.json", "*.jsonl", "mining-cache")
    )
    return {
        "untrained": untrained,
        "trained": trained,
        "output_dir": str(final),
        "seconds": round(time.perf_counter() - start, 1),
    }
