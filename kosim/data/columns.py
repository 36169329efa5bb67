"""Training data as Hugging Face users hold it -> kosim ColumnDatasets (what the Trainer takes as train/eval data).

Accepted: a :class:`~kosim.data.ColumnDataset`, a `datasets.Dataset`, a `DatasetDict` (several datasets, one per
name), a plain ``{column: values}`` dict, or a dict of any of the datasets. sentence-transformers' label rule: a
column named ``label``, ``labels``, ``score`` or ``scores`` holds the labels (one number per row); every other
column is a text column, in order (the first is the anchor). Duck-typed: `datasets` is never imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kosim.data.datasets import ColumnDataset
from kosim.data.parsing import as_label_array

__all__ = [
    "LABEL_COLUMNS",
    "TrainData",
    "is_hf_dataset",
    "is_hf_dataset_dict",
    "named_datasets",
    "to_column_dataset",
    "to_column_datasets",
]

LABEL_COLUMNS = ("label", "labels", "score", "scores")  # sentence-transformers' label column names
# A ColumnDataset, datasets.Dataset, DatasetDict, {column: values} or {name: dataset} (duck-typed, hence Any)
TrainData = Any


def is_hf_dataset(obj: Any) -> bool:
    """A `datasets.Dataset` (or anything shaped like one: a list of `column_names`, `features`, indexing)."""
    return (
        not isinstance(obj, Mapping)
        and isinstance(getattr(obj, "column_names", None), list)
        and hasattr(obj, "__getitem__")
        and hasattr(obj, "features")
    )


def _is_dataset(obj: Any) -> bool:
    return isinstance(obj, ColumnDataset) or is_hf_dataset(obj)


def is_hf_dataset_dict(obj: Any) -> bool:
    """A `datasets.DatasetDict` or a plain dict whose values are all datasets (`datasets.Dataset` or ColumnDataset)."""
    return isinstance(obj, Mapping) and len(obj) > 0 and all(_is_dataset(v) for v in obj.values())


def _columns_of(data: Any, name: str) -> dict[str, list]:
    if is_hf_dataset(data):
        if len(data.column_names) == 0:
            raise ValueError(f"dataset {name!r} has no columns")
        return {k: list(v) for k, v in data[:].items()}  # one columnar read (respects .select / .shuffle)
    if isinstance(data, Mapping):
        for key, values in data.items():
            if _is_dataset(values):
                raise TypeError(
                    f"dataset {name!r}: {key!r} is a dataset but other entries are columns; pass either "
                    "{column: values} or {dataset name: dataset}"
                )
            if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
                raise TypeError(
                    f"dataset {name!r}: column {key!r} must be a list of values (one per row), "
                    f"got {type(values).__name__}"
                )
        return {k: list(v) for k, v in data.items()}
    raise TypeError(
        "training data must be a ColumnDataset, a datasets.Dataset, a DatasetDict or a {column: values} dict, "
        f"got {type(data).__name__}"
    )


def to_column_dataset(data: Any, name: str = "train") -> ColumnDataset:
    """One ColumnDataset: the label column (at most one of :data:`LABEL_COLUMNS`) as labels, the rest as text."""
    if isinstance(data, ColumnDataset):
        return data
    columns = _columns_of(data, name)
    found = [c for c in LABEL_COLUMNS if c in columns]
    if len(found) > 1:
        both = " and a ".join(repr(c) for c in found)
        raise ValueError(f"dataset {name!r} has both a {both} column: keep one of them as the label column")
    labels = None
    if found:
        values = columns.pop(found[0])
        # one number per row, or a vector per row (teacher scores for MarginMSE, teacher embeddings for MSE)
        labels = as_label_array(list(values), f"dataset {name!r}: column {found[0]!r} must hold numbers")
    if not columns:
        raise ValueError(f"dataset {name!r} has only a label column ({found[0]!r}) and no text column")
    return ColumnDataset(columns, labels, name=name)


def to_column_datasets(data: Any, name: str = "train") -> ColumnDataset | dict[str, ColumnDataset]:
    """A ColumnDataset for one dataset or dict of columns; `{name: ColumnDataset}` for a DatasetDict (each named)."""
    if is_hf_dataset_dict(data):
        return {str(key): to_column_dataset(value, name=str(key)) for key, value in data.items()}
    return to_column_dataset(data, name=name)


def named_datasets(data: TrainData) -> dict[str, ColumnDataset]:
    """Datasets by name, as the Trainer holds them: one dataset (or dict of columns) is called "train" (the name
    losses and eval datasets match on); a dict of datasets keeps its names; None is no dataset."""
    if data is None:
        return {}
    if isinstance(data, Mapping) and len(data) == 0:
        return {}
    out = to_column_datasets(data)
    return out if isinstance(out, dict) else {"train": out}
