"""`kosim.st.evaluation`: sentence-transformers' evaluators (6.2: constructors, defaults, metric keys, primary
metric, CSV files) on kosim's evaluators.

Each class takes sentence-transformers' arguments in its order, builds kosim's evaluator from them and is called
as `evaluator(model, output_path=None, epoch=-1, steps=-1)`; with `output_path` and `write_csv` (the default) it
appends the row sentence-transformers writes to the same CSV file. `precision` (quantized embeddings in the STS
evaluator) is refused by name, as are the IR evaluator's CSV and predictions files.
"""

from __future__ import annotations

import csv
import os
from typing import Any

from kosim import evaluation as core
from kosim.st.similarity_functions import SimilarityFunction

__all__ = [
    "BinaryClassificationEvaluator",
    "EmbeddingSimilarityEvaluator",
    "InformationRetrievalEvaluator",
    "ParaphraseMiningEvaluator",
    "SequentialEvaluator",
    "SimilarityFunction",
    "TripletEvaluator",
]

_BINARY_CSV = ("accuracy", "accuracy_threshold", "f1", "precision", "recall", "f1_threshold", "ap", "mcc")


def _name(value: Any) -> Any:
    """A SimilarityFunction member (or a list of them) as kosim's similarity names."""
    if isinstance(value, (list, tuple)):
        return [_name(v) for v in value]
    return getattr(value, "value", value)


class _Evaluator:
    """kosim's evaluator `self.core` called the sentence-transformers way, with its CSV row."""

    csv_file = ""
    greater_is_better = True

    def __init__(self, evaluator: Any, write_csv: bool) -> None:
        self.core = evaluator
        self.write_csv = write_csv

    def __getattr__(self, name: str) -> Any:  # name, primary_metric, metric_keys, batch_size, ...
        if name.startswith("_") or "core" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.core, name)

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict:
        """The core evaluator's metrics; with `output_path`, also a row of sentence-transformers' CSV file, whose
        headers and values each subclass's `_csv(unprefixed metrics)` gives."""
        metrics = self.core(model)
        if output_path is not None and self.write_csv:
            prefix = f"{self.core.name}_" if self.core.name else ""
            headers, values = self._csv({key.removeprefix(prefix): value for key, value in metrics.items()})
            os.makedirs(output_path, exist_ok=True)
            path = os.path.join(output_path, self.csv_file)
            exists = os.path.isfile(path)
            with open(path, "a" if exists else "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                if not exists:
                    writer.writerow(["epoch", "steps", *headers])
                writer.writerow([epoch, steps, *values])
        return metrics


class EmbeddingSimilarityEvaluator(_Evaluator):
    def __init__(
        self,
        sentences1,
        sentences2,
        scores,
        batch_size: int = 16,
        main_similarity: Any = None,
        similarity_fn_names: list[str] | None = None,
        name: str = "",
        show_progress_bar: bool = False,
        write_csv: bool = True,
        precision: str | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        if precision is not None:
            raise ValueError(f"EmbeddingSimilarityEvaluator: precision={precision!r} is not supported by kosim.st")
        evaluator = core.EmbeddingSimilarityEvaluator(
            sentences1,
            sentences2,
            scores,
            batch_size=batch_size,
            name=name,
            similarity_fns=_name(similarity_fn_names) or None,
            show_progress_bar=show_progress_bar,
            main_similarity=_name(main_similarity) or None,
            truncate_dim=truncate_dim,
        )
        super().__init__(evaluator, write_csv)
        self.csv_file = f"similarity_evaluation{'_' + name if name else ''}_results.csv"

    @classmethod
    def from_input_examples(cls, examples: list, **kwargs: Any) -> EmbeddingSimilarityEvaluator:
        return cls(
            [e.texts[0] for e in examples], [e.texts[1] for e in examples], [e.label for e in examples], **kwargs
        )

    def _csv(self, metrics):
        fns = self.core.similarity_fns
        return [f"{fn}_{m}" for fn in fns for m in ("pearson", "spearman")], [
            metrics[f"{m}_{fn}"] for fn in fns for m in ("pearson", "spearman")
        ]


class TripletEvaluator(_Evaluator):
    def __init__(
        self,
        anchors,
        positives,
        negatives,
        main_similarity_function: Any = None,
        margin: float | dict[str, float] | None = None,
        name: str = "",
        batch_size: int = 16,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        truncate_dim: int | None = None,
        similarity_fn_names: list[str] | None = None,
        main_distance_function: Any = "deprecated",
    ) -> None:
        if main_distance_function != "deprecated" and main_similarity_function is None:
            main_similarity_function = main_distance_function  # sentence-transformers' deprecated name
        evaluator = core.TripletEvaluator(
            anchors,
            positives,
            negatives,
            batch_size=batch_size,
            name=name,
            similarity_fns=_name(similarity_fn_names) or None,
            show_progress_bar=show_progress_bar,
            margin=0.0 if margin is None else margin,
            main_similarity=_name(main_similarity_function) or None,
            truncate_dim=truncate_dim,
        )
        super().__init__(evaluator, write_csv)
        self.csv_file = f"triplet_evaluation{'_' + name if name else ''}_results.csv"

    @classmethod
    def from_input_examples(cls, examples: list, **kwargs: Any) -> TripletEvaluator:
        return cls(*([e.texts[i] for e in examples] for i in range(3)), **kwargs)

    def _csv(self, metrics):
        fns = self.core.similarity_fns
        return [f"accuracy_{fn}" for fn in fns], [metrics[f"{fn}_accuracy"] for fn in fns]


class BinaryClassificationEvaluator(_Evaluator):
    def __init__(self, sentences1, sentences2, labels, name: str = "", write_csv: bool = True, **kwargs: Any) -> None:
        if "similarity_fn_names" in kwargs:
            kwargs["similarity_fn_names"] = _name(kwargs["similarity_fn_names"]) or None
        super().__init__(
            core.BinaryClassificationEvaluator(sentences1, sentences2, labels, name=name, **kwargs), write_csv
        )
        self.csv_file = f"binary_classification_evaluation{'_' + name if name else ''}_results.csv"

    def _csv(self, metrics):
        fns = self.core.similarity_fn_names or self.core._current_names
        return [f"{fn}_{m}" for fn in fns for m in _BINARY_CSV], [
            metrics[f"{fn}_{m}"] for fn in fns for m in _BINARY_CSV
        ]


class ParaphraseMiningEvaluator(_Evaluator):
    def __init__(self, sentences_map, name: str = "", write_csv: bool = True, **kwargs: Any) -> None:
        super().__init__(core.ParaphraseMiningEvaluator(sentences_map, name=name, **kwargs), write_csv)
        self.csv_file = f"paraphrase_mining_evaluation{'_' + name if name else ''}_results.csv"

    def _csv(self, metrics):
        headers = ["precision", "recall", "f1", "threshold", "average_precision"]
        return headers, [metrics[h] for h in headers]


class InformationRetrievalEvaluator(_Evaluator):
    def __init__(self, queries, corpus, relevant_docs, write_csv: bool = True, **kwargs: Any) -> None:
        if kwargs.get("main_score_function") is not None:
            kwargs["main_score_function"] = _name(kwargs["main_score_function"])
        super().__init__(core.InformationRetrievalEvaluator(queries, corpus, relevant_docs, **kwargs), write_csv)

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict:
        if output_path is not None and self.write_csv:
            raise ValueError(
                "InformationRetrievalEvaluator: writing CSV results (output_path) is not supported by kosim.st; "
                "pass write_csv=False"
            )
        return self.core(model)


class SequentialEvaluator(core.SequentialEvaluator):
    """kosim's SequentialEvaluator (it takes sentence-transformers' arguments), passing `output_path`, `epoch` and
    `steps` on to evaluators that take them."""

    greater_is_better = True

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict:
        if output_path is None:
            return super().__call__(model)
        wrapped = [_Forwarding(e, output_path, epoch, steps) for e in self.evaluators]
        return core.SequentialEvaluator(wrapped, self.main_score_function)(model)


class _Forwarding:
    """An evaluator called as `evaluator(model)` that forwards the ST call's output_path, epoch and steps."""

    def __init__(self, evaluator: Any, output_path: str, epoch: int, steps: int) -> None:
        self.evaluator, self.args = evaluator, (output_path, epoch, steps)

    def __getattr__(self, name: str) -> Any:
        if name in ("evaluator", "args"):
            raise AttributeError(name)
        return getattr(self.evaluator, name)

    def __call__(self, model: Any) -> Any:
        return self.evaluator(model, *self.args)
