"""kosim.card: model cards, the ``README.md`` the Trainer saves next to a model, laid out like sentence-transformers'.

``build`` gathers the values from the run (datasets, losses, arguments, logs, metrics), ``template`` lays them
out, and ``architecture`` prints the module stack. The card takes the run's objects as arguments and imports
nothing from :mod:`kosim.training`.
"""

from __future__ import annotations

from kosim.card.architecture import architecture
from kosim.card.build import build_model_card, column_stats, evaluator_metrics, log_rows, widget_examples

__all__ = ["architecture", "build_model_card", "column_stats", "evaluator_metrics", "log_rows", "widget_examples"]
