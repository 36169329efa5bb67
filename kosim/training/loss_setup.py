"""The losses' share of a run: guide tables for GIST losses, and losses with parameters (SoftmaxLoss's head).

Trainer(...)  -> resolve_guides: every GIST loss has its guide model (an early, clear error otherwise)
set-up        -> bind_guides: the guide encodes each distinct text of the dataset once -> GuideTable on the
                 device -> the loss bound to it (GuidedLoss); the table is derived, never saved
              -> losses moved to the device; their parameters optimized next to the model's (decay_groups)
checkpoint    -> loss_states / load_loss_states: every loss with parameters, by dataset name
final model   -> save_loss_heads: the head beside the model (``save_head``), and a card note saying where
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kosim.data.datasets import ColumnDataset
from kosim.losses.gist import GuideTable, bind_guide_table, needs_guide
from kosim.model import SentenceEncoder
from kosim.training.errors import TrainingError

__all__ = [
    "Guide",
    "bind_guides",
    "card_notes",
    "load_loss_states",
    "loss_states",
    "losses_with_parameters",
    "resolve_guides",
    "save_loss_heads",
]

Guide = SentenceEncoder | Mapping[str, SentenceEncoder] | None
HEADS_DIR = "loss_heads"  # several losses with heads: one subdirectory per dataset


def resolve_guides(losses: Mapping[str, nn.Module], guide: Guide) -> dict[str, SentenceEncoder]:
    """The guide model of each training dataset whose loss is guided (GISTEmbedLoss, also inside a wrapper).

    ``guide`` is one model for every guided loss, or ``{dataset name: model}``. A guided loss without a guide, a
    guide for a dataset whose loss takes none, or one that is not a SentenceEncoder is refused here, when the
    Trainer is built, not at the first step.
    """
    guided = [name for name, loss in losses.items() if needs_guide(loss)]
    if guide is None:
        guides: dict[str, Any] = {}
    elif isinstance(guide, Mapping):
        unknown = sorted(set(guide) - set(losses))
        if unknown:
            raise ValueError(f"guide given for unknown train dataset(s) {unknown}; datasets are {list(losses)}")
        unguided = [name for name in guide if name not in guided]
        if unguided:
            raise ValueError(
                f"guide given for dataset(s) {unguided}, whose loss takes no guide (only GISTEmbedLoss does)"
            )
        guides = dict(guide)
    else:
        if not guided:
            raise ValueError(
                "a guide model was given, but no training loss takes one (only GISTEmbedLoss does); "
                f"losses: {sorted({type(loss).__name__ for loss in losses.values()})}"
            )
        guides = dict.fromkeys(guided, guide)
    for name, model in guides.items():
        if not isinstance(model, SentenceEncoder):
            raise TypeError(f"the guide of dataset {name!r} must be a SentenceEncoder, got {type(model).__name__}")
    missing = [name for name in guided if name not in guides]
    if missing:
        raise ValueError(
            f"dataset(s) {missing}: GISTEmbedLoss needs a guide model; pass Trainer(..., guide=SentenceEncoder) "
            '(or {dataset: SentenceEncoder}), or in a run config add guide = "model directory or hub id" to the '
            "[[datasets]] entry"
        )
    return guides


def bind_guides(
    losses: Sequence[nn.Module],
    names: Sequence[str],
    datasets: Mapping[str, ColumnDataset],
    guides: Mapping[str, SentenceEncoder],
    device: torch.device,
    max_seq_length: int,
    batch_size: int,
    progress: bool | None = None,
) -> list[nn.Module]:
    """Each loss of ``names`` with a guide bound to a table of ``datasets[name]``'s texts, on ``device``.

    The guide encodes on ``device`` (then goes back where it was), once per distinct text, truncated to the
    student's ``max_seq_length`` when that is shorter than its own. Text ids are per dataset, so every dataset, an
    eval dataset too, gets its own table.
    """
    bound = []
    for name, loss in zip(names, losses):
        guide = guides.get(name)
        if guide is None or not needs_guide(loss):
            bound.append(loss)
            continue
        home = guide.device
        guide.to(device)
        try:
            table = GuideTable.from_dataset(
                guide, datasets[name], max_seq_length=max_seq_length, batch_size=batch_size, progress=progress
            )
        finally:
            guide.to(home)
        bound.append(bind_guide_table(loss, table.to(device)))
    return bound


def losses_with_parameters(losses: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
    """The losses that have parameters of their own (e.g. SoftmaxLoss's classifier), by dataset name."""
    return {name: loss for name, loss in losses.items() if next(loss.parameters(), None) is not None}


def loss_states(losses: Mapping[str, nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
    """What a checkpoint holds of the losses: the state dict of every loss with parameters, by dataset name."""
    return {name: loss.state_dict() for name, loss in losses_with_parameters(losses).items()}


def load_loss_states(losses: Mapping[str, nn.Module], saved: Mapping[str, Any] | None, where: Path) -> None:
    """Put a checkpoint's loss parameters back (before the optimizer state is restored); a checkpoint written
    without them, or for other losses, is refused."""
    expected = losses_with_parameters(losses)
    saved = dict(saved or {})
    if sorted(saved) != sorted(expected):
        raise TrainingError(
            f"{where} holds loss parameters for datasets {sorted(saved)}, but this run's losses with parameters "
            f"are {sorted(expected)}; resume with the losses the checkpoint was written with"
        )
    for name, loss in expected.items():
        try:
            loss.load_state_dict(saved[name])
        except RuntimeError as exc:
            raise TrainingError(f"{where}: the loss parameters of dataset {name!r} do not fit: {exc}") from None


def _head_dirs(losses: Mapping[str, nn.Module], output_dir: Path) -> dict[str, Path]:
    heads = {name: loss for name, loss in losses_with_parameters(losses).items() if hasattr(loss, "save_head")}
    if len(heads) == 1:
        return {next(iter(heads)): output_dir}
    return {name: output_dir / HEADS_DIR / name for name in heads}


def save_loss_heads(losses: Mapping[str, nn.Module], output_dir: Path) -> list[Path]:
    """Write every loss head beside the final model (one loss: in ``output_dir``; several: one subdirectory of
    ``loss_heads/`` per dataset); returns the files written."""
    return [losses[name].save_head(directory) for name, directory in _head_dirs(losses, output_dir).items()]


def card_notes(
    losses: Mapping[str, nn.Module], guides: Mapping[str, SentenceEncoder], sources: Mapping[str, str]
) -> dict[str, str]:
    """Model-card notes: each dataset's guide model (``sources``: its directory or hub id, where known), and where
    each loss head is saved."""
    notes: dict[str, str] = {}
    for name in guides:
        shown = sources.get(name) or f"a {guides[name].embedding_dim}-d SentenceEncoder given in Python"
        notes[f"Guide model of {name!r} (GISTEmbedLoss)"] = shown
    dirs = _head_dirs(losses, Path("."))
    for name, directory in dirs.items():
        note = losses[name].card_note() if hasattr(losses[name], "card_note") else "saved"
        where = "" if str(directory) == "." else f" (directory `{directory.as_posix()}/`)"
        notes[f"{type(losses[name]).__name__} head of {name!r}"] = note + where
    return notes
