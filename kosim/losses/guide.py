"""The guide's (or teacher's) embeddings as a table: computed once per distinct text, looked up by text id per step.

A frozen guide (GISTEmbedLoss) or teacher (MSELoss) runs without dropout, so its embedding of a text never changes
during training: :func:`encode_guide_table` computes it once per distinct text (under the text's training prompt)
before training, :class:`GuideTable` holds it and looks a batch up by the batch's per-column text ids, and
:class:`GuidedLoss` binds a table to the loss that reads it (``table_role``), so the training step calls that loss
like any other: no guide forward and no re-tokenizing inside the step, whatever the guide's tokenizer is.
:func:`bind_guide_table` does the binding through wrappers such as ``MatryoshkaLoss`` (what the Trainer does at set-up).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:  # the model is only needed to build a table, never by a loss
    from kosim.data.datasets import ColumnDataset
    from kosim.model import SentenceEncoder

__all__ = [
    "GuideTable",
    "GuidedLoss",
    "bind_guide_table",
    "encode_guide_table",
    "needs_guide",
    "takes_teacher",
    "unique_texts",
]


def unique_texts(dataset: ColumnDataset) -> list[str]:
    """The distinct texts of ``dataset`` in text-id order: ``unique_texts(d)[d.text_ids[c][r]]`` is row ``r`` of
    column ``c`` (ids are given first-seen, columns scanned left to right)."""
    order: dict[str, None] = {}
    for name in dataset.column_names:
        order.update(dict.fromkeys(dataset.column(name)))
    texts = list(order)
    if len(texts) != dataset.num_unique_texts:
        raise RuntimeError(f"found {len(texts)} distinct texts, but the dataset has {dataset.num_unique_texts} ids")
    return texts


def encode_guide_table(
    guide: SentenceEncoder,
    texts: Sequence[str],
    batch_size: int = 64,
    max_seq_length: int | None = None,
    dtype: str = "float32",
    progress: bool | None = None,
    prompt: str | None = "",
) -> Tensor:
    """The frozen guide's embedding of every text, ``[len(texts), guide_dim]`` float32 on the CPU.

    ``prompt`` goes before every text, as the training prompt goes before the student's (the guide's pooling
    leaves it out when its ``include_prompt`` is off, as the student's); ``""`` (the default) is none, not even the
    guide's ``default_prompt_name``: the guide scores exactly the inputs the student trains on. ``None`` applies
    the model's own default prompt, as its ``encode`` does (a teacher's labels computed beforehand would get it).

    The guide tokenizes the texts itself (its own tokenizer and vocabulary, once per text) and runs in eval mode, as
    the guide of a GIST run does every step. ``max_seq_length`` truncates for the guide only (pass the student's when
    it is shorter than the guide's, to score exactly the tokens the student sees, as sentence-transformers does with
    a shared tokenizer); the guide's own setting is restored afterwards.
    """
    previous = guide.max_seq_length
    if max_seq_length is not None:
        guide.max_seq_length = min(int(max_seq_length), previous)
    try:
        table = guide.encode(
            list(texts),
            batch_size=batch_size,
            dtype=dtype,
            to="torch",
            device="cpu",
            progress=progress,
            prompt=prompt,
        )
    finally:
        guide.max_seq_length = previous
    return table.reshape(len(texts), -1)  # [texts, guide dim] (the guide's truncate_dim, if it has one)


class GuideTable:
    """Frozen guide embeddings, looked up by a batch's per-column text ids: ``[num_texts, guide_dim]`` tables.

    One table serves every column, unless the columns read their texts under different training prompts: then
    each distinct prompt has its table (text ids name the text alone, so the same text under two prompts is two
    guide embeddings) and ``columns[c]`` is the table of column ``c``. Tables are per dataset (text ids are dense
    per dataset); keep them on the training device to make the lookup a single gather per column, no host transfer.
    """

    def __init__(self, embeddings: Tensor | Sequence[Tensor], columns: Sequence[int] | None = None) -> None:
        tables = [embeddings] if isinstance(embeddings, Tensor) else list(embeddings)
        for table in tables:
            if not isinstance(table, Tensor) or table.dim() != 2 or not table.is_floating_point():
                shape = tuple(table.shape) if isinstance(table, Tensor) else type(table).__name__
                raise ValueError(f"a guide table is a [num_texts, dim] float tensor, got {shape}")
        if not tables or len({tuple(t.shape) for t in tables}) != 1:
            raise ValueError(f"guide tables must be one or more of one shape, got {[tuple(t.shape) for t in tables]}")
        if columns is not None and (not columns or min(columns) < 0 or max(columns) >= len(tables)):
            raise ValueError(f"columns must name one of the {len(tables)} table(s) per column, got {list(columns)}")
        if columns is None and len(tables) > 1:
            raise ValueError("several guide tables need columns: the table of each column")
        self.tables = [t.detach() for t in tables]
        self.columns = None if columns is None else [int(c) for c in columns]

    @property
    def embeddings(self) -> Tensor:
        """The first (with one prompt for every column, the only) table."""
        return self.tables[0]

    @classmethod
    def from_dataset(
        cls,
        guide: SentenceEncoder,
        dataset: ColumnDataset,
        prompts: Mapping[str, str] | None = None,
        columns: Sequence[str] | None = None,
        unprompted: str | None = "",
        **encode_kwargs: Any,
    ) -> GuideTable:
        """Encode every distinct text of ``dataset`` once with ``guide`` (see :func:`encode_guide_table`).

        ``prompts`` (``{column: prompt}``, the run's training prompts of this dataset) go before the texts of their
        columns, each (prompt, text) encoded once. ``columns`` limits the encoding to the texts of those columns
        (e.g. a teacher's targets: only the first column's texts); the rows of other texts are left zero.
        ``unprompted`` is the prompt of the columns without one: ``""`` none, ``None`` the model's default prompt.
        """
        prompts = dict(prompts or {})
        names = dataset.column_names
        ids = dataset.text_ids
        wanted = list(names) if columns is None else list(columns)
        per_column = [prompts.get(c, unprompted) for c in names]
        distinct = list(dict.fromkeys(per_column[names.index(c)] for c in wanted))
        if len(distinct) == 1 and columns is None:  # the common case: every text once, under one prompt
            return cls(encode_guide_table(guide, unique_texts(dataset), prompt=distinct[0], **encode_kwargs))
        uniques = unique_texts(dataset)
        tables = []
        for prompt in distinct:
            cols = [names.index(c) for c in wanted if per_column[names.index(c)] == prompt]
            needed = np.unique(np.concatenate([ids[c] for c in cols]))  # text ids read under this prompt
            rows = encode_guide_table(guide, [uniques[i] for i in needed], prompt=prompt, **encode_kwargs)
            table = rows.new_zeros(len(uniques), rows.shape[1])
            table[torch.from_numpy(needed)] = rows
            tables.append(table)
        table_of = [distinct.index(p) if p in distinct else 0 for p in per_column]
        return cls(tables, table_of if len(tables) > 1 else None)

    def __len__(self) -> int:
        return self.tables[0].shape[0]

    def to(self, device: torch.device | str) -> GuideTable:
        return GuideTable([t.to(device) for t in self.tables], self.columns)

    def lookup(self, text_ids: Sequence[Tensor]) -> list[Tensor]:
        """One ``[rows, guide_dim]`` tensor per column of text ids (each ``[rows]`` int64)."""
        # No bounds check here (it would cost a host sync every step): from_dataset sizes the table to the dataset.
        if self.columns is None:
            table = self.tables[0]
            return [table[ids.to(table.device)] for ids in text_ids]
        return [self.tables[self.columns[c]][ids.to(self.tables[0].device)] for c, ids in enumerate(text_ids)]


class GuidedLoss(nn.Module):
    """A loss bound to one dataset's :class:`GuideTable`, callable as ``loss(embeddings, labels, text_ids)``.

    It looks the batch's rows up by ``text_ids`` and hands them to the inner loss, as its ``table_role`` says:

    - ``"guide"`` (GISTEmbedLoss): the guide's embeddings of every column, as ``guide_embeddings``;
    - ``"teacher"`` (MSELoss): the teacher's embeddings of the first column's texts, as the labels (the target of
      every column, as sentence-transformers' distillation recipe computes ``labels = teacher.encode(source)``).

    So it fits every place that calls a kosim loss unchanged: the plain and gradient-cached training step (which call
    the loss once on the whole batch's embeddings and text ids), cross-process gathering (text ids are gathered with
    the embeddings, so the lookup covers every process's rows), and wrappers such as ``MatryoshkaLoss`` (which
    truncate the student's embeddings, never the guide's). Text ids are dense per dataset, so each dataset (train or
    eval) needs its own table.
    """

    def __init__(self, loss: nn.Module, table: GuideTable) -> None:
        super().__init__()
        if not isinstance(table, GuideTable):
            raise TypeError(f"GuidedLoss needs a GuideTable, got {type(table).__name__}")
        role = getattr(loss, "table_role", None)
        if role not in ("guide", "teacher"):
            raise TypeError(f"{type(loss).__name__} takes no guide or teacher table")
        self.loss = loss
        self.table = table
        self.role = role

    def forward(
        self, embeddings: list[Tensor], labels: Tensor | None = None, text_ids: list[Tensor] | None = None
    ) -> Tensor:
        name = type(self.loss).__name__
        if text_ids is None:
            raise ValueError(f"{name} with a {self.role} table needs the batch's text_ids, got None")
        if self.role == "teacher":
            if labels is not None:
                raise ValueError(f"{name} with a teacher model takes no labels (the teacher gives the targets)")
            return self.loss(embeddings, self.table.lookup(text_ids[:1])[0], text_ids=text_ids)
        return self.loss(embeddings, labels, text_ids=text_ids, guide_embeddings=self.table.lookup(text_ids))

    def config(self) -> dict[str, Any]:
        """The inner loss's model-card parameters."""
        return self.loss.config() if hasattr(self.loss, "config") else {}


# ---------------------------------------------------------------------------------------------------------------
# Binding a table into a loss stack (what the Trainer does at set-up)
# ---------------------------------------------------------------------------------------------------------------


def _takes_table(loss: nn.Module, role: str | None) -> bool:
    """Whether ``loss`` is, or wraps (``MatryoshkaLoss(loss=...)``), an unbound loss of that ``table_role``
    (``None``: either)."""
    if isinstance(loss, GuidedLoss):
        return False
    own = getattr(type(loss), "table_role", None)
    if own is not None and (role is None or own == role):
        return True
    inner = getattr(loss, "loss", None)
    return isinstance(inner, nn.Module) and _takes_table(inner, role)


def needs_guide(loss: nn.Module) -> bool:
    """Whether ``loss`` is, or wraps (``MatryoshkaLoss(loss=...)``), a :class:`GISTEmbedLoss` without a table."""
    return _takes_table(loss, "guide")


def takes_teacher(loss: nn.Module) -> bool:
    """Whether ``loss`` is, or wraps, a loss a teacher model's table can give its targets (MSELoss)."""
    return _takes_table(loss, "teacher")


def bind_guide_table(loss: nn.Module, table: GuideTable) -> nn.Module:
    """``loss`` with its :class:`GISTEmbedLoss` (or MSELoss, for a teacher) bound to ``table`` (a
    :class:`GuidedLoss`, innermost, so that a wrapper such as ``MatryoshkaLoss`` truncates the student's embeddings
    and never the guide's).

    ``loss`` itself is left unchanged: a wrapper is shallow-copied with the bound inner loss in its place (any
    parameters stay shared with the original).
    """
    if getattr(type(loss), "table_role", None) is not None:
        return GuidedLoss(loss, table)
    inner = getattr(loss, "loss", None)
    if not isinstance(inner, nn.Module) or not _takes_table(inner, None):
        raise TypeError(f"{type(loss).__name__} holds no GISTEmbedLoss to bind a guide table to")
    wrapper = copy.copy(loss)
    wrapper._modules = dict(loss._modules)  # the copy's own submodule dict, so the original keeps its inner loss
    wrapper.loss = bind_guide_table(inner, table)
    return wrapper
