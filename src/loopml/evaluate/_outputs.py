"""Each metric, once, from outputs already made: the one implementation that evaluation,
model search, monitoring and the loop's paired bootstrap share.

Every metric takes optional row weights, one row of weights per resample (``(B, n)``), so a
bootstrap of B resamples is one vectorised call rather than B calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

REGRESSION = ("rmse", "mae", "r2")
CLASSIFICATION = ("roc_auc", "log_loss", "f1", "accuracy", "precision", "recall")
_EPS = 1e-15


def metric_values(
    metric: str,
    y: Any,
    output: Any,
    *,
    classes: Sequence[Any] | None = None,
    positive: int | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """``metric`` of predictions ``output`` against truth ``y``, once per row of ``weights``.

    Classification: ``output`` holds the class probabilities (n × classes, in ``classes``
    order) and ``positive`` the positive class's column for a binary model. Regression:
    ``output`` holds the predicted values. ``weights`` (B × n, e.g. bootstrap counts) weighs
    the rows; without it the answer has one element. A resample where the metric is undefined
    (ROC AUC with one class only) gives NaN.

    >>> import numpy as np
    >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    >>> metric_values("roc_auc", ["n", "y", "y", "n"], p, classes=["n", "y"], positive=1)
    array([0.75])
    >>> metric_values("rmse", [1.0, 2.0], np.array([1.0, 4.0]), weights=np.array([[1, 1], [2, 0]]))
    array([1.41421356, 0.        ])
    """
    n = len(y)
    w = np.ones((1, n)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
    total = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric in REGRESSION:
            return _regression(metric, np.asarray(y, dtype=float),
                               np.asarray(output, dtype=float), w, total)
        if metric in CLASSIFICATION:
            assert classes is not None
            return _classification(metric, y, np.asarray(output, dtype=float), list(classes),
                                   positive, w, total)
    raise ValueError(f"metric_values does not compute {metric!r}")


def class_index(y: Any, classes: Sequence[Any]) -> np.ndarray:
    """The position of each label of ``y`` in ``classes``; -1 for a label not among them."""
    lookup = {c: i for i, c in enumerate(classes)}
    plain = y.tolist() if hasattr(y, "tolist") else list(y)  # np.str_ -> str, for the lookup
    return np.fromiter((lookup.get(v, -1) for v in plain), dtype=np.int64, count=len(y))


def _regression(metric: str, y: np.ndarray, pred: np.ndarray, w: np.ndarray,
                total: np.ndarray) -> np.ndarray:
    err = pred - y
    if metric == "rmse":
        return np.sqrt((w * err**2).sum(axis=1) / total)
    if metric == "mae":
        return (w * np.abs(err)).sum(axis=1) / total
    mean = (w * y).sum(axis=1) / total
    ss_res = (w * err**2).sum(axis=1)
    ss_tot = (w * (y[None, :] - mean[:, None]) ** 2).sum(axis=1)
    return np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1),
                    np.where(ss_res == 0, 1.0, 0.0))


def _classification(metric: str, y: Any, proba: np.ndarray, classes: list[Any],
                    positive: int | None, w: np.ndarray, total: np.ndarray) -> np.ndarray:
    truth = class_index(y, classes)
    pred = np.argmax(proba, axis=1)
    if metric == "accuracy":
        return (w * (pred == truth)).sum(axis=1) / total
    if metric == "log_loss":
        if (truth < 0).any():
            return np.full(w.shape[0], np.nan)
        p = np.clip(proba[np.arange(len(truth)), truth], _EPS, 1 - _EPS)
        return (w * -np.log(p)).sum(axis=1) / total
    if len(classes) == 2:
        pos = 1 if positive is None else positive
        if metric == "roc_auc":
            return _auc(truth == pos, proba[:, pos], w)
        return _counts_metric(metric, truth == pos, pred == pos, w)
    if metric == "roc_auc":  # one-vs-rest, macro: defined only when every class occurs
        if not all((truth == k).any() for k in range(len(classes))):
            return np.full(w.shape[0], np.nan)
        return np.mean([_auc(truth == k, proba[:, k], w) for k in range(len(classes))], axis=0)
    present = np.union1d(truth[truth >= 0], pred)  # macro over the labels seen, as sklearn
    return np.mean([_counts_metric(metric, truth == k, pred == k, w) for k in present], axis=0)


def _counts_metric(metric: str, actual: np.ndarray, predicted: np.ndarray,
                   w: np.ndarray) -> np.ndarray:
    tp = (w * (actual & predicted)).sum(axis=1)
    fp = (w * (~actual & predicted)).sum(axis=1)
    fn = (w * (actual & ~predicted)).sum(axis=1)
    num, den = {"f1": (2 * tp, 2 * tp + fp + fn), "precision": (tp, tp + fp),
                "recall": (tp, tp + fn)}[metric]
    return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def _auc(actual: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ROC AUC as the weighted Mann-Whitney statistic (ties count one half): the area under
    the ROC curve, computed once per row of weights from a single sort."""
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    a = actual[order]
    out = np.empty(w.shape[0])
    for lo in range(0, w.shape[0], 64):  # bounded memory for many resamples of many rows
        ws = w[lo : lo + 64][:, order]
        pos = np.add.reduceat(ws * a, starts, axis=1)
        neg = np.add.reduceat(ws * ~a, starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg
        num = (pos * (below + 0.5 * neg)).sum(axis=1)
        den = pos.sum(axis=1) * neg.sum(axis=1)
        out[lo : lo + 64] = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    return out
