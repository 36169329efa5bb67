"""kosim.st.data: training data as sentence-transformers users hold it -> kosim ColumnDatasets."""

from __future__ import annotations

import numpy as np
import pytest

from kosim.data import ColumnDataset
from kosim.st.data import to_column_dataset, to_column_datasets

ROWS = {"anchor": ["a", "b", "c"], "positive": ["x", "y", "z"]}


@pytest.mark.parametrize("label", ["label", "score"])
def test_dict_with_label_column(label):
    data = to_column_datasets({"sentence1": ["a", "b"], label: [0.5, 1.0], "sentence2": ["c", "d"]})
    assert isinstance(data, ColumnDataset)
    assert data.column_names == ["sentence1", "sentence2"]
    np.testing.assert_allclose(data.labels, [0.5, 1.0])


def test_dict_without_labels_keeps_column_order():
    data = to_column_dataset(ROWS, name="pairs")
    assert data.column_names == ["anchor", "positive"] and data.labels is None and data.name == "pairs"
    assert data.column("positive") == ["x", "y", "z"]


def test_label_and_score_together_is_refused():
    with pytest.raises(ValueError, match="both a 'label' and a 'score'"):
        to_column_dataset({"a": ["x"], "label": [1], "score": [0.5]})


def test_non_numeric_label_is_refused():
    with pytest.raises(ValueError, match="'label' must hold numbers"):
        to_column_dataset({"a": ["x"], "label": ["entailment"]})


def test_other_types_are_refused():
    with pytest.raises(TypeError, match="datasets.Dataset"):
        to_column_dataset([("a", "b")])


def test_hf_dataset_and_dataset_dict():
    datasets = pytest.importorskip("datasets")
    one = datasets.Dataset.from_dict({"premise": ["a", "b"], "hypothesis": ["c", "d"], "label": [0, 2]})
    data = to_column_datasets(one)
    assert data.column_names == ["premise", "hypothesis"]
    np.testing.assert_allclose(data.labels, [0, 2])
    several = to_column_datasets(datasets.DatasetDict({"nli": one, "pairs": datasets.Dataset.from_dict(ROWS)}))
    assert list(several) == ["nli", "pairs"]
    assert several["nli"].name == "nli" and several["pairs"].column_names == ["anchor", "positive"]
    assert to_column_datasets({"nli": one})["nli"].num_columns == 2  # a plain dict of datasets too
