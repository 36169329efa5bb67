"""The output directory of a run: its run config (so two different runs never mix there) and its JSONL log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kosim.config.arguments import REMOVED, TrainingArguments
from kosim.training.errors import TrainingError

RUN_CONFIG = "run_config.json"
LOG_FILE = "train_log.jsonl"
# Arguments that may differ between the runs sharing one output directory (output_dir itself: the same directory
# may be spelled relative or absolute, or have been moved). REMOVED fields may still stand in an old run config.
_RESUMABLE_CHANGES = ("output_dir", "resume_from_checkpoint", "overwrite_output_dir", "disable_tqdm")


def check_run_config(output_dir: Path, args: TrainingArguments, write: bool) -> None:
    """Refuse an output directory that holds a different run; then (main process: ``write``) record this one."""
    config = {k: v for k, v in args.to_dict().items() if k not in _RESUMABLE_CHANGES}
    path = output_dir / RUN_CONFIG
    if path.is_file() and not args.overwrite_output_dir:
        previous = json.loads(path.read_text())
        keys = (set(config) | set(previous)) - set(_RESUMABLE_CHANGES) - set(REMOVED)
        diff = sorted(k for k in keys if config.get(k) != previous.get(k))
        if diff:
            raise TrainingError(
                f"{output_dir} holds a different run (arguments differ: {diff}); "
                "choose another output_dir or set overwrite_output_dir=True"
            )
    if write:
        output_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=1, default=str))


def append_log(output_dir: Path, record: dict[str, Any]) -> None:
    """One JSON line per logged step or evaluation."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / LOG_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def rewrite_log(output_dir: Path, records: list[dict[str, Any]]) -> None:
    """On resume: the log file holds exactly the checkpoint's records (not the steps the killed run redid)."""
    (output_dir / LOG_FILE).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
