"""Honest evaluation: metrics per task on the test split, scored once, with curves.

``score`` is the same metric code the search uses, so validation and test agree.
"""

from loopml.evaluate._evaluate import evaluate
from loopml.evaluate._metrics import default_metric, greater_is_better, score, task_metrics

__all__ = ["default_metric", "evaluate", "greater_is_better", "score", "task_metrics"]
