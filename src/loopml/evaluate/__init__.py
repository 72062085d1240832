"""Honest evaluation: metrics per task on the test split, scored once, with curves.

``score`` is the same metric code the search uses, so validation and test agree;
``metric_values`` is that code on outputs already made (with bootstrap weights).
"""

from loopml.evaluate._evaluate import evaluate, importances
from loopml.evaluate._metrics import default_metric, greater_is_better, score, task_metrics
from loopml.evaluate._outputs import metric_values

__all__ = [
    "default_metric", "evaluate", "greater_is_better", "importances", "metric_values", "score",
    "task_metrics",
]
