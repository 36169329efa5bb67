"""The losses' share of a run: guide tables for GIST losses (and teacher tables for MSELoss), and losses with
parameters (SoftmaxLoss's head).

Trainer(...)  -> resolve_guides: every GIST loss has its guide model, every teacher an MSELoss whose width it
                 gives (early, clear errors otherwise)
set-up        -> bind_guides: the guide encodes each distinct text of the dataset once (under the column's
                 training prompt, as the student reads it) -> GuideTable on the device -> the loss bound to it
                 (GuidedLoss); a teacher encodes the first column's texts, its targets; tables are never saved
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
from kosim.losses.guide import GuideTable, bind_guide_table, needs_guide, takes_teacher
from kosim.model import SentenceEncoder
from kosim.training.errors import TrainingError

__all__ = [
    "Guide",
    "bind_guides",
    "card_notes",
    "load_loss_states",
    "loss_states",
    "losses_with_parameters",
    "model_sources",
    "resolve_guides",
    "save_loss_heads",
]

Guide = SentenceEncoder | Mapping[str, SentenceEncoder] | None
HEADS_DIR = "loss_heads"  # several losses with heads: one subdirectory per dataset


def resolve_guides(
    losses: Mapping[str, nn.Module], guide: Guide, teacher: Guide = None, student: SentenceEncoder | None = None
) -> dict[str, SentenceEncoder]:
    """The guide model of each training dataset whose loss is guided (GISTEmbedLoss, also inside a wrapper), and
    the teacher model of each dataset whose MSELoss learns a teacher's embeddings.

    ``guide`` / ``teacher`` is one model for every such loss, or ``{dataset name: model}``. A guided loss without a
    guide, a guide (teacher) for a dataset whose loss takes none, one that is not a SentenceEncoder, or a teacher
    whose embedding width is not the student's (``student``; or MSELoss's ``projection_dim``) is refused here, when
    the Trainer is built, not at the first step.
    """
    guides = _assign(losses, guide, needs_guide, "guide", "GISTEmbedLoss")
    missing = [name for name, loss in losses.items() if needs_guide(loss) and name not in guides]
    if missing:
        raise ValueError(
            f"dataset(s) {missing}: GISTEmbedLoss needs a guide model; pass Trainer(..., guide=SentenceEncoder) "
            '(or {dataset: SentenceEncoder}), or in a run config add guide = "model directory or hub id" to the '
            "[[datasets]] entry"
        )
    teachers = _assign(losses, teacher, takes_teacher, "teacher", "MSELoss")
    for name, model in teachers.items():
        width = _target_width(losses[name], student)
        if width is not None and model.embedding_dim != width:
            raise ValueError(
                f"dataset {name!r}: the teacher gives {model.embedding_dim}-d embeddings, but the student "
                f"{'projects' if width != getattr(student, 'embedding_dim', width) else 'gives'} {width}-d ones; "
                "MSELoss needs equal widths (set MSELoss(projection_dim=teacher width, embedding_dim=student width) "
                "to learn a projection)"
            )
    return {**guides, **teachers}


def _target_width(loss: nn.Module, student: SentenceEncoder | None) -> int | None:
    while not hasattr(loss, "projection_dim") and isinstance(getattr(loss, "loss", None), nn.Module):
        loss = loss.loss
    projection = getattr(loss, "projection_dim", None)
    return projection if projection is not None else getattr(student, "embedding_dim", None)


def _assign(losses: Mapping[str, nn.Module], given: Guide, takes, what: str, loss_name: str) -> dict[str, Any]:
    """``{dataset: model}`` of one model for every loss that ``takes`` it, or of a ``{dataset: model}`` map."""
    taking = [name for name, loss in losses.items() if takes(loss)]
    if given is None:
        models: dict[str, Any] = {}
    elif isinstance(given, Mapping):
        unknown = sorted(set(given) - set(losses))
        if unknown:
            raise ValueError(f"{what} given for unknown train dataset(s) {unknown}; datasets are {list(losses)}")
        refused = [name for name in given if name not in taking]
        if refused:
            raise ValueError(
                f"{what} given for dataset(s) {refused}, whose loss takes no {what} (only {loss_name} does)"
            )
        models = dict(given)
    else:
        if not taking:
            raise ValueError(
                f"a {what} model was given, but no training loss takes one (only {loss_name} does); "
                f"losses: {sorted({type(loss).__name__ for loss in losses.values()})}"
            )
        models = dict.fromkeys(taking, given)
    for name, model in models.items():
        if not isinstance(model, SentenceEncoder):
            raise TypeError(f"the {what} of dataset {name!r} must be a SentenceEncoder, got {type(model).__name__}")
    return models


def model_sources(
    losses: Mapping[str, nn.Module],
    models: Mapping[str, SentenceEncoder],
    guide_source: str | Mapping[str, str] | None,
    teacher_source: str | Mapping[str, str] | None,
) -> dict[str, str]:
    """What the card names each guide (teacher) model by: its ``guide_source`` (``teacher_source``), one for all or
    ``{dataset: path or hub id}``."""
    out = {}
    for name in models:
        source = teacher_source if takes_teacher(losses[name]) else guide_source
        value = source.get(name) if isinstance(source, Mapping) else source
        if value is not None:
            out[name] = str(value)
    return out


def bind_guides(
    losses: Sequence[nn.Module],
    names: Sequence[str],
    datasets: Mapping[str, ColumnDataset],
    guides: Mapping[str, SentenceEncoder],
    device: torch.device,
    max_seq_length: int,
    batch_size: int,
    progress: bool | None = None,
    prompts: Mapping[str, Mapping[str, str]] | None = None,
) -> list[nn.Module]:
    """Each loss of ``names`` with a guide (teacher) bound to a table of ``datasets[name]``'s texts, on ``device``.

    The guide encodes on ``device`` (then goes back where it was), once per distinct text under its column's
    training prompt (``prompts``: ``{dataset: {column: prompt}}``, the texts the student reads), truncated to the
    student's ``max_seq_length`` when that is shorter than its own. A teacher encodes the first column's texts as
    its ``encode`` would (no training prompt: the targets an ST user computes with ``teacher.encode``); its dataset
    must have no labels. Text ids are per dataset, so every dataset, an eval dataset too, gets its own table.
    """
    bound = []
    for name, loss in zip(names, losses):
        guide = guides.get(name)
        teacher = takes_teacher(loss)
        if guide is None or not (needs_guide(loss) or teacher):
            bound.append(loss)
            continue
        data = datasets[name]
        if teacher and data.labels is not None:
            raise ValueError(
                f"dataset {name!r} has labels and a teacher model: MSELoss learns either the labels (the teacher's "
                "embeddings computed beforehand) or the teacher's embeddings, not both; drop one"
            )
        if teacher:
            options: dict[str, Any] = {"columns": data.column_names[:1], "unprompted": None}
        else:
            options = {"prompts": (prompts or {}).get(name)}
        home = guide.device
        guide.to(device)
        try:
            table = GuideTable.from_dataset(
                guide, data, max_seq_length=max_seq_length, batch_size=batch_size, progress=progress, **options
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
        if name in losses and takes_teacher(losses[name]):
            notes[f"Teacher model of {name!r} (MSELoss)"] = shown
        else:
            notes[f"Guide model of {name!r} (GISTEmbedLoss)"] = shown
    dirs = _head_dirs(losses, Path("."))
    for name, directory in dirs.items():
        note = losses[name].card_note() if hasattr(losses[name], "card_note") else "saved"
        where = "" if str(directory) == "." else f" (directory `{directory.as_posix()}/`)"
        notes[f"{type(losses[name]).__name__} head of {name!r}"] = note + where
    return notes
