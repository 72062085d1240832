"""Metrics by name: which way is better, and how to compute each from a fitted model."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.core import labels
from loopml.core.errors import ConfigError, unknown_name
from loopml.evaluate._outputs import REGRESSION, metric_values

if TYPE_CHECKING:
    import polars as pl

GREATER_IS_BETTER = {
    "roc_auc": True,
    "log_loss": False,
    "f1": True,
    "accuracy": True,
    "precision": True,
    "recall": True,
    "rmse": False,
    "mae": False,
    "r2": True,
    "silhouette": True,
}
TASK_METRICS = {
    "classification": ("roc_auc", "log_loss", "f1", "accuracy"),
    "regression": ("rmse", "mae", "r2"),
    "clustering": ("silhouette",),
}
SILHOUETTE_SAMPLE = 5000


def default_metric(task: str, metric: str = "auto") -> str:
    """The primary metric: the configured one, else ROC AUC / RMSE / silhouette by task."""
    if metric != "auto":
        if metric not in TASK_METRICS.get(task, ()):
            raise ConfigError(
                f"Metric {metric!r} does not apply to {task}.",
                hint=f"For {task} use one of: {', '.join(TASK_METRICS[task])} (or 'auto').",
            )
        return metric
    return TASK_METRICS[task][0]


def greater_is_better(metric: str) -> bool:
    if metric not in GREATER_IS_BETTER:
        raise ConfigError(unknown_name("metric", metric, GREATER_IS_BETTER))
    return GREATER_IS_BETTER[metric]


def score(
    metric: str, model: Any, X: pl.DataFrame, y: np.ndarray | None, *, positive_label: Any = None
) -> float:
    """Score a fitted model on ``X`` (and ``y``) with one metric.

    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> import polars as pl
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> m = LogisticRegression(max_iter=500).fit(pl.from_pandas(X), y.to_numpy())
    >>> round(score("accuracy", m, pl.from_pandas(X), y.to_numpy()), 2)
    0.97
    """
    if metric == "silhouette":
        return silhouette(model, X)
    assert y is not None
    if metric in ("rmse", "mae", "r2"):
        return regression_metrics(y, np.asarray(model.predict(X), dtype=float))[metric]
    proba = model.predict_proba(X)
    return classification_metrics(y, proba, model.classes_, positive_label=positive_label)[metric]


def task_metrics(
    task: str,
    y: Any,
    output: Any,
    *,
    classes: Any = None,
    positive_label: Any = None,
) -> dict[str, float]:
    """Every metric of ``task`` from true values and a model's outputs, as ``evaluate`` reports
    them: ``output`` is the probability matrix (rows x ``classes``) of a classifier or the
    predicted values of a regressor.

    >>> import numpy as np
    >>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    >>> out = task_metrics("classification", np.array(["no", "yes", "yes", "yes"]), proba,
    ...                    classes=["no", "yes"], positive_label="yes")
    >>> out["accuracy"], round(out["roc_auc"], 3)
    (0.75, 1.0)
    >>> task_metrics("regression", [1.0, 2.0], [1.0, 4.0])["mae"]
    1.0
    """
    if task == "classification":
        if classes is None:
            raise ConfigError("Classification metrics need the model's classes.")
        return classification_metrics(np.asarray(y), np.asarray(output, dtype=float), classes,
                                       positive_label=positive_label)  # fmt: skip
    if task == "regression":
        return regression_metrics(np.asarray(y, dtype=float), np.asarray(output, dtype=float))
    raise ConfigError(
        f"There are no metrics from labels for a {task} task.",
        hint="Realised metrics apply to classification and regression.",
    )


def classification_metrics(
    y: np.ndarray, proba: np.ndarray, classes: Any, *, positive_label: Any = None
) -> dict[str, float]:
    """Every classification metric of class probabilities ``proba`` (in ``classes`` order)."""
    classes = list(classes)
    pos = positive_column(classes, positive_label) if len(classes) == 2 else None
    names = ["accuracy", "log_loss", "f1", "precision", "recall", "roc_auc"]
    out = {
        name: float(metric_values(name, y, proba, classes=classes, positive=pos)[0])
        for name in names
    }
    if math.isnan(out["log_loss"]):  # a label the model does not know: no log loss
        del out["log_loss"]
    return out


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {name: float(metric_values(name, y, pred)[0]) for name in REGRESSION}


def silhouette(model: Any, X: pl.DataFrame) -> float:
    """Silhouette of the model's clusters in its own feature space (sampled for speed)."""
    from sklearn.metrics import silhouette_score

    Xt = model[:-1].transform(X) if hasattr(model, "steps") else X
    labels = model.predict(X)
    if len(np.unique(labels)) < 2:
        return -1.0
    n = len(labels)
    return float(
        silhouette_score(Xt, labels, sample_size=min(n, SILHOUETTE_SAMPLE), random_state=0)
    )


def positive_column(classes: Any, positive: Any = None) -> int:
    """Which of a binary model's classes is scored as positive: ``positive`` (the bundle's
    answer) when given, else ``loopml.core.labels.positive_label`` over ``classes``.

    >>> positive_column(["no", "yes"]), positive_column([0, 1], "0")
    (1, 0)
    """
    classes = np.asarray(classes).tolist()  # plain values: "yes" names "yes", not np.str_
    index = labels.positive_index(classes, labels.positive_label(classes, positive))
    assert index is not None  # a binary target always has a positive class
    return index
