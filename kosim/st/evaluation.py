"""`kosim.st.evaluation`: sentence-transformers' evaluator constructors on kosim's evaluators.

Each class takes sentence-transformers' arguments, translates their names (`similarity_fn_names` is kosim's
`similarity_fns`; `None` means the model's own similarity, as in sentence-transformers 6, so the kosim evaluator is
built at the first call) and is called as `evaluator(model, output_path=None, epoch=-1, steps=-1)`. Writing CSV
files (`output_path` with `write_csv`) and `precision` are refused by name.
"""

from __future__ import annotations

from typing import Any

from kosim import evaluation as core

__all__ = [
    "BinaryClassificationEvaluator",
    "EmbeddingSimilarityEvaluator",
    "InformationRetrievalEvaluator",
    "ParaphraseMiningEvaluator",
    "SequentialEvaluator",
    "SimilarityFunction",
    "TripletEvaluator",
]

from kosim.st.similarity_functions import SimilarityFunction  # noqa: E402


def _name(value: Any) -> Any:
    """A SimilarityFunction member (or a list of them) as kosim's similarity names."""
    if isinstance(value, (list, tuple)):
        return [_name(v) for v in value]
    return getattr(value, "value", value)


class _Evaluator:
    """Holds sentence-transformers' arguments; builds kosim's evaluator (once) when first called."""

    core_class: type = object
    renames: dict[str, str] = {}
    fns_argument = "similarity_fn_names"  # None: the model's similarity (the kosim argument is `similarity_fns`)

    def __init__(self, *args: Any, write_csv: bool = True, precision: str | None = None, **kwargs: Any) -> None:
        if precision is not None:
            raise ValueError(f"{type(self).__name__}: precision={precision!r} is not supported by kosim.st")
        self.write_csv = write_csv
        self._args = args
        self._kwargs = {self.renames.get(k, k): _name(v) for k, v in kwargs.items()}
        self._core = None
        if not (self.fns_argument and self._kwargs.get("similarity_fns") is None):
            self._core = self._build()

    def _build(self) -> Any:
        return self.core_class(*self._args, **self._kwargs)

    def core(self, model: Any) -> Any:
        """kosim's evaluator for `model` (a missing similarity list becomes the model's `similarity_fn_name`)."""
        if self._core is None:
            self._kwargs["similarity_fns"] = [model.similarity_fn_name]
            self._core = self._build()
        return self._core

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or self.__dict__.get("_core") is None:
            raise AttributeError(name)
        return getattr(self._core, name)

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict:
        if output_path is not None and self.write_csv:
            raise ValueError(f"{type(self).__name__}: writing CSV results (output_path) is not supported")
        return self.core(model)(model)


class EmbeddingSimilarityEvaluator(_Evaluator):
    core_class = core.EmbeddingSimilarityEvaluator
    renames = {"similarity_fn_names": "similarity_fns"}

    def __init__(self, sentences1, sentences2, scores, batch_size: int = 16, main_similarity=None, **kwargs):
        kwargs.setdefault("similarity_fn_names", None)
        super().__init__(
            sentences1, sentences2, scores, batch_size=batch_size, main_similarity=main_similarity, **kwargs
        )


class TripletEvaluator(_Evaluator):
    core_class = core.TripletEvaluator
    renames = {"similarity_fn_names": "similarity_fns"}

    def __init__(self, anchors, positives, negatives, main_similarity_function=None, margins=None, **kwargs):
        kwargs.setdefault("similarity_fn_names", None)
        kwargs.setdefault("batch_size", 16)
        if margins is not None:
            kwargs["margin"] = margins
        super().__init__(anchors, positives, negatives, main_similarity=main_similarity_function, **kwargs)


class BinaryClassificationEvaluator(_Evaluator):
    core_class = core.BinaryClassificationEvaluator
    fns_argument = ""  # kosim's takes similarity_fn_names itself

    def __init__(self, sentences1, sentences2, labels, **kwargs):
        super().__init__(sentences1, sentences2, labels, **kwargs)


class InformationRetrievalEvaluator(_Evaluator):
    core_class = core.InformationRetrievalEvaluator
    fns_argument = ""

    def __init__(self, queries, corpus, relevant_docs, **kwargs):
        super().__init__(queries, corpus, relevant_docs, **kwargs)


class ParaphraseMiningEvaluator(_Evaluator):
    core_class = core.ParaphraseMiningEvaluator
    fns_argument = ""

    def __init__(self, sentences_map, **kwargs):
        super().__init__(sentences_map, **kwargs)


class SequentialEvaluator(core.SequentialEvaluator):
    """kosim's SequentialEvaluator (it takes sentence-transformers' arguments already), called the ST way."""

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict:
        if output_path is not None:
            raise ValueError("SequentialEvaluator: writing results to output_path is not supported")
        return super().__call__(model)
