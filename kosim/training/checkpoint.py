"""Checkpoints: everything needed to continue a run exactly, written atomically and verified on load.

Layout of `output_dir/checkpoint-<step>/`: the model as a sentence-transformers directory (usable on its own),
`trainer_state.pt` (optimizer, scheduler, scaler, sampler position, every RNG state, counters and log history;
tensors and plain containers only, read back with `weights_only=True`), and `manifest.json` with the sha256 of
every file. A checkpoint is written to a temporary directory and renamed into place, so an interrupted write never
replaces or corrupts the previous one; `remove_partial_checkpoints` clears what a killed write leaves behind.

What a checkpoint holds of a run is one list, `STATEFUL` + `COUNTERS`, read by both `checkpoint_state` and
`restore_state`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kosim.model import SentenceEncoder
from kosim.nn.loading import CheckpointError
from kosim.training.errors import TrainingError

MANIFEST = "manifest.json"
STATE = "trainer_state.pt"
_NAME = re.compile(r"^checkpoint-(\d+)$")
_PARTIAL = ".tmp-checkpoint-"

# The run state a checkpoint holds: objects saved with `state_dict()` and restored with `load_state_dict()`, and
# plain values (attributes of the Trainer's run state). Every process's RNG state is stored beside them as "rng".
STATEFUL = ("optimizer", "scheduler", "scaler", "sampler")
COUNTERS = ("global_step", "skipped_steps", "log_history")


class CheckpointCorruptError(CheckpointError):
    """A checkpoint whose files are missing, truncated or altered (a user error: the message names the file)."""


def checkpoint_state(run: Any, rng_states: list[dict[str, Any]]) -> dict[str, Any]:
    """The trainer state to save: `STATEFUL` and `COUNTERS` of `run`, and the RNG state of each process."""
    state = {name: getattr(run, name).state_dict() for name in STATEFUL}
    state.update({name: getattr(run, name) for name in COUNTERS})
    return {**state, "rng": rng_states}


def restore_state(run: Any, state: dict[str, Any], rank: int = 0) -> None:
    """Put a saved trainer state back into `run` (the inverse of `checkpoint_state`), and this process's RNG."""
    for name in STATEFUL:
        getattr(run, name).load_state_dict(state[name])
    for name in COUNTERS:
        value = state[name]
        setattr(run, name, list(value) if isinstance(value, list) else value)
    set_rng_state(state["rng"][min(rank, len(state["rng"]) - 1)])


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) RNG states, as tensors and plain containers."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def gather_rng_states(dist: Any) -> list[dict[str, Any]]:
    """Every process's RNG state (index = rank; ``dist`` a DistInfo), so each one resumes its own dropout stream."""
    state = rng_state()
    if not dist.enabled:
        return [state]
    import torch.distributed as torch_dist

    states: list[Any] = [None] * dist.world_size
    torch_dist.all_gather_object(states, state)
    return states


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuple(state["python"]))
    kind, key, *rest = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(output_dir: Path, step: int, model, state: dict[str, Any], keep: int | None = None) -> Path:
    """Write `checkpoint-<step>` atomically; keep only the newest `keep` checkpoints."""
    output_dir.mkdir(parents=True, exist_ok=True)
    final = output_dir / f"checkpoint-{step}"
    tmp = output_dir / f"{_PARTIAL}{step}-{uuid.uuid4().hex[:8]}"
    try:
        SentenceEncoder.save(model, tmp)  # kosim's save, also for a kosim.st model
        torch.save(state, tmp / STATE)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {str(p.relative_to(tmp)): {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in files}
        with open(tmp / MANIFEST, "w") as f:
            json.dump({"step": step, "files": manifest}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep is not None:
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def remove_partial_checkpoints(output_dir: Path) -> list[Path]:
    """Delete the temporary directories of checkpoint writes that a kill interrupted; returns what was removed."""
    if not output_dir.is_dir():
        return []
    partial = sorted(p for p in output_dir.iterdir() if p.name.startswith(_PARTIAL) and p.is_dir())
    for path in partial:
        shutil.rmtree(path, ignore_errors=True)
    return partial


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints in `output_dir`, oldest first (temporary directories are ignored)."""
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if (m := _NAME.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def verify_checkpoint(path: Path) -> None:
    """Check every file against the manifest; a clear error names the first problem."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointCorruptError(f"{path}: no {MANIFEST} (incomplete or not a kosim checkpoint)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointCorruptError(f"{manifest_path}: corrupted ({exc})") from exc
    for name, meta in manifest["files"].items():
        file = path / name
        if not file.is_file():
            raise CheckpointCorruptError(f"{path}: file {name} is missing")
        if file.stat().st_size != meta["bytes"]:
            raise CheckpointCorruptError(
                f"{file}: truncated or altered ({file.stat().st_size} bytes, expected {meta['bytes']})"
            )
        if _sha256(file) != meta["sha256"]:
            raise CheckpointCorruptError(f"{file}: contents do not match the checksum in {MANIFEST}")


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verified model weights (kosim state dict) and trainer state of a checkpoint."""
    from kosim.model import SentenceEncoder

    verify_checkpoint(path)
    weights = SentenceEncoder.load(path).state_dict()
    state = torch.load(path / STATE, map_location="cpu", weights_only=True)
    return weights, state


Checkpoint = tuple[Path, dict[str, torch.Tensor], dict[str, Any]]


def load_resume_checkpoint(
    output_dir: Path, resume_from_checkpoint: bool | str | None, log: Callable[[str], None]
) -> Checkpoint | None:
    """The checkpoint a run resumes from, verified and loaded: `(path, weights, trainer state)`, or None.

    `True` / `"latest"`: the newest checkpoint in `output_dir` that verifies; each newer one that does not is
    reported through `log` and skipped, and only when none verifies is the newest one's problem raised; with no
    checkpoint at all (a run killed before its first save) the run starts from the beginning (None). A path:
    exactly that checkpoint (a corrupted one is an error).
    """
    value = resume_from_checkpoint
    if value in (None, False, ""):
        return None
    if value is not True and value != "latest":
        path = Path(value)
        if not path.is_dir():
            raise TrainingError(f"resume_from_checkpoint: {path} is not a checkpoint directory")
        return (path, *load_checkpoint(path))
    candidates = list_checkpoints(output_dir)
    if not candidates:  # e.g. killed before its first checkpoint: the run starts again from step 0
        log(f"resume_from_checkpoint: {output_dir} holds no checkpoint yet; training from the start")
        return None
    problems: list[CheckpointCorruptError] = []
    for path in reversed(candidates):
        try:
            weights, state = load_checkpoint(path)
        except CheckpointCorruptError as exc:
            problems.append(exc)
            log(f"cannot resume from {path.name}: {exc}; trying an older checkpoint")
            continue
        if problems:
            log(f"resuming from {path}, the newest checkpoint that verifies")
        return path, weights, state
    raise CheckpointCorruptError(
        f"no checkpoint in {output_dir} verifies, so the run cannot resume (newest: {problems[0]}); "
        "remove the corrupted checkpoint directories, or start afresh with resume_from_checkpoint=False"
    )
