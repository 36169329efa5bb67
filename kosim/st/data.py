"""Training data as sentence-transformers users hold it -> kosim ColumnDatasets.

The converter lives in :mod:`kosim.data.columns` (kosim's Trainer takes the same data); re-exported here.
"""

from __future__ import annotations

from kosim.data.columns import (
    LABEL_COLUMNS,
    is_hf_dataset,
    is_hf_dataset_dict,
    named_datasets,
    to_column_dataset,
    to_column_datasets,
)

__all__ = [
    "LABEL_COLUMNS",
    "is_hf_dataset",
    "is_hf_dataset_dict",
    "named_datasets",
    "to_column_dataset",
    "to_column_datasets",
]
