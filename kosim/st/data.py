"""Training data as sentence-transformers users hold it -> kosim ColumnDatasets.

A Hugging Face `datasets.Dataset`, a `DatasetDict` (several datasets, one per name) or a plain `{column: values}`
dict. sentence-transformers' rule: a column named `label` or `score` holds the labels; every other column is a
text column, in order (the first is the anchor). Duck-typed: `datasets` is never imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kosim.data import ColumnDataset

__all__ = ["LABEL_COLUMNS", "is_hf_dataset", "is_hf_dataset_dict", "to_column_dataset", "to_column_datasets"]

LABEL_COLUMNS = ("label", "score")


def is_hf_dataset(obj: Any) -> bool:
    """A `datasets.Dataset` (or anything shaped like one: `column_names`, `__getitem__` by column, `from_dict`)."""
    return (
        not isinstance(obj, Mapping)
        and isinstance(getattr(obj, "column_names", None), list)
        and hasattr(obj, "__getitem__")
        and hasattr(obj, "features")
    )


def is_hf_dataset_dict(obj: Any) -> bool:
    """A `datasets.DatasetDict` (a dict of datasets) or a plain dict whose values are all datasets."""
    return isinstance(obj, Mapping) and len(obj) > 0 and all(is_hf_dataset(v) for v in obj.values())


def _columns_of(data: Any) -> dict[str, Any]:
    if is_hf_dataset(data):
        return {name: data[name] for name in data.column_names}
    if isinstance(data, Mapping):
        return dict(data)
    raise TypeError(
        f"training data must be a datasets.Dataset, a DatasetDict or a {{column: values}} dict, got {type(data).__name__}"
    )


def to_column_dataset(data: Any, name: str = "train") -> ColumnDataset:
    """One ColumnDataset: the `label` / `score` column (at most one of them) as labels, the rest as text columns."""
    if isinstance(data, ColumnDataset):
        return data
    columns = _columns_of(data)
    found = [c for c in LABEL_COLUMNS if c in columns]
    if len(found) > 1:
        raise ValueError(f"dataset {name!r} has both a 'label' and a 'score' column: keep one as the label column")
    labels = None
    if found:
        values = list(columns.pop(found[0]))
        try:
            labels = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"dataset {name!r}: column {found[0]!r} must hold numbers (one per row), got e.g. {values[:1]!r}"
            ) from exc
        if labels.ndim != 1:
            raise ValueError(
                f"dataset {name!r}: column {found[0]!r} holds one number per row in kosim, got shape {labels.shape}"
            )
    return ColumnDataset({k: list(v) for k, v in columns.items()}, labels, name=name)


def to_column_datasets(data: Any, name: str = "train") -> ColumnDataset | dict[str, ColumnDataset]:
    """A ColumnDataset for one dataset or dict of columns; `{name: ColumnDataset}` for a DatasetDict (each named)."""
    if is_hf_dataset_dict(data):
        return {key: to_column_dataset(value, name=str(key)) for key, value in data.items()}
    return to_column_dataset(data, name=name)
