"""Run several evaluators as one: their metrics merged, plus one ``sequential_score``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["SequentialEvaluator"]


def _last(scores: list[float]) -> float:
    return scores[-1]


class SequentialEvaluator:
    """Call each evaluator on the model in order and merge their result dicts.

    ``"sequential_score"`` (the primary metric) is ``main_score_function`` of the evaluators' primary metrics, in
    order: by default the last one's, as in sentence-transformers (pass e.g. ``statistics.mean`` for the mean). An
    evaluator without ``primary_metric`` contributes its first key; one that returns a bare number contributes it
    under ``"evaluator_{i}"``.

    Args:
        evaluators: kosim evaluators (or any ``evaluator(model) -> dict | float``).
        main_score_function: ``list[float] -> float``.
    """

    name = ""
    primary_metric = "sequential_score"

    def __init__(self, evaluators: Iterable[Any], main_score_function: Callable[[list[float]], float] = _last) -> None:
        self.evaluators = list(evaluators)
        for i, evaluator in enumerate(self.evaluators):
            if not callable(evaluator):
                raise TypeError(f"evaluators[{i}] is a {type(evaluator).__name__}, not an evaluator")
        if not callable(main_score_function):
            raise TypeError("main_score_function must be callable (a list of scores -> one score)")
        self.main_score_function = main_score_function

    @property
    def metric_keys(self) -> list[str]:
        """Every child's keys (where it lists them), then ``"sequential_score"``."""
        keys = [key for evaluator in self.evaluators for key in getattr(evaluator, "metric_keys", [])]
        return [*keys, "sequential_score"]

    def __call__(self, model: Any) -> dict[str, float]:
        """Run every evaluator; returns the union of their metrics and ``"sequential_score"``."""
        results: dict[str, float] = {}
        scores: list[float] = []
        for i, evaluator in enumerate(self.evaluators):
            result = evaluator(model)
            if not isinstance(result, dict):
                scores.append(result)
                result = {f"evaluator_{i}": result}
            else:
                primary = getattr(evaluator, "primary_metric", None)
                if primary is not None and primary not in result:
                    raise KeyError(
                        f"evaluators[{i}] ({type(evaluator).__name__}) did not return its primary metric {primary!r}"
                    )
                scores.append(result[primary] if primary is not None else next(iter(result.values())))
            results.update(result)
        results["sequential_score"] = self.main_score_function(scores) if scores else 0.0
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}({[type(e).__name__ for e in self.evaluators]})"
