"""The final test: every metric of the task and the curves its report plots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.core.errors import TargetError
from loopml.core.records import Evaluation
from loopml.evaluate._clusters import cluster_profiles
from loopml.evaluate._metrics import (
    classification_metrics,
    default_metric,
    greater_is_better,
    positive_column,
    regression_metrics,
    silhouette,
)

if TYPE_CHECKING:
    import polars as pl

CURVE_POINTS = 200
RESIDUAL_POINTS = 2000
TOP_FEATURES = 25


def evaluate(
    model: Any,
    test: pl.DataFrame,
    *,
    task: str,
    target: str | None,
    metric: str = "auto",
    positive_label: Any = None,
    seed: int = 0,
) -> Evaluation:
    """Score ``model`` on the test frame: metrics, curves and feature importance.

    Call it once, on data the model never saw during training or selection.
    """
    metric = default_metric(task, metric)
    if test.height == 0:
        raise TargetError("The test split is empty; there is nothing to evaluate on.")
    y = None
    if task != "clustering":
        if target is None or target not in test.columns:
            raise TargetError(f"The test frame has no target column {target!r}.")
        y = test[target].to_numpy()
    X = test
    common: dict[str, Any] = {
        "task": task,
        "metric": metric,
        "greater_is_better": greater_is_better(metric),
        "rows": test.height,
        "feature_importance": feature_importance(model),
    }
    if task == "classification":
        assert y is not None
        return _classification(model, X, y, positive_label=positive_label, **common)
    if task == "regression":
        assert y is not None
        pred = np.asarray(model.predict(X), dtype=float)
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(pred), size=min(len(pred), RESIDUAL_POINTS), replace=False))
        return Evaluation(
            metrics=regression_metrics(y, pred),
            residuals=(_floats(pred[keep]), _floats(np.asarray(y, dtype=float)[keep])),
            **common,
        )
    labels = np.asarray(model.predict(X))
    values, counts = np.unique(labels, return_counts=True)
    inputs = getattr(model, "feature_names_in_", None)
    return Evaluation(
        metrics={"silhouette": silhouette(model, X), "clusters": float(len(values))},
        labels=tuple(str(v) for v in values),
        cluster_sizes=tuple(int(c) for c in counts),
        cluster_profiles=cluster_profiles(
            X, labels, columns=list(X.columns) if inputs is None else [str(c) for c in inputs]
        ),
        **common,
    )


def _classification(
    model: Any, X: pl.DataFrame, y: np.ndarray, *, positive_label: Any, **common: Any
) -> Evaluation:
    from sklearn import metrics as m

    classes = np.asarray(model.classes_)
    proba = model.predict_proba(X)
    pred = classes[np.argmax(proba, axis=1)]
    confusion = m.confusion_matrix(y, pred, labels=classes)
    roc = pr = None
    if len(classes) == 2:
        pos = positive_column(classes, positive_label)
        y_pos = (y == classes[pos]).astype(int)
        if 0 < y_pos.sum() < len(y_pos):
            fpr, tpr, _ = m.roc_curve(y_pos, proba[:, pos])
            precision, recall, _ = m.precision_recall_curve(y_pos, proba[:, pos])
            roc = (_thin(fpr), _thin(tpr))
            pr = (_thin(recall), _thin(precision))
    return Evaluation(
        metrics=classification_metrics(y, proba, classes, positive_label=positive_label),
        labels=tuple(str(c) for c in classes),
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        roc=roc,
        pr=pr,
        **common,
    )


def feature_importance(model: Any) -> tuple[tuple[str, ...], tuple[float, ...]] | None:
    """The estimator's own importances (trees) or |coefficients| (linear), top 25, summing
    to 1, named after the transformed feature columns (or the raw columns, for a model that
    reports its own importances over them)."""
    found = importances(model)
    if found is None:
        return None
    names, values = found
    if len(names) != len(values) or values.sum() <= 0:
        return None
    values = values / values.sum()
    order = np.argsort(values)[::-1][:TOP_FEATURES]
    return tuple(names[i] for i in order), tuple(round(float(values[i]), 6) for i in order)


def importances(model: Any) -> tuple[list[str], np.ndarray] | None:
    """(feature names, raw importances) of a fitted Pipeline's estimator, or of a model
    with ``feature_importances_`` and ``feature_names_in_``; None when there are none."""
    if not hasattr(model, "steps"):
        try:
            values = np.asarray(model.feature_importances_, dtype=float)
            return [str(n) for n in model.feature_names_in_], values
        except (AttributeError, TypeError):
            return None
    estimator = model.steps[-1][1]
    estimator = getattr(estimator, "estimator_", estimator)
    if hasattr(estimator, "feature_importances_"):
        values = np.asarray(estimator.feature_importances_, dtype=float)
    elif hasattr(estimator, "coef_"):
        coef = np.asarray(estimator.coef_, dtype=float)
        values = np.abs(coef).mean(axis=0) if coef.ndim == 2 else np.abs(coef)
    else:
        return None
    try:
        names = [str(n) for n in model[:-1].get_feature_names_out()]
    except (AttributeError, ValueError):
        names = [f"f{i}" for i in range(len(values))]
    return names, values


def _thin(values: np.ndarray) -> tuple[float, ...]:
    """At most CURVE_POINTS evenly spaced points, keeping both ends."""
    if len(values) <= CURVE_POINTS:
        return _floats(values)
    idx = np.unique(np.linspace(0, len(values) - 1, CURVE_POINTS).round().astype(int))
    return _floats(values[idx])


def _floats(values: np.ndarray) -> tuple[float, ...]:
    return tuple(round(float(v), 6) for v in values)
