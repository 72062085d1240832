"""Out-of-fold scores of one binned column: how well its bins' target means predict the target
on rows they were not computed on. The leakage checks score each feature, and the gap between
two time columns, this way.

A column is cut into the shared bins (``loopml.explore._bins.codes``: quantile bins of numbers
from ``loopml.core.bins``, the top categories of the rest, a bin for missing values). Each row
is predicted by its bin's target mean over the other folds (shrunk towards the overall mean by
one pseudo-row, so a bin seen once does not predict with certainty), and the predictions are
scored as a model would be:

- binary classification: ROC AUC of the predicted share of the positive class (the mean
  over the held-out folds);
- multiclass: balanced accuracy of the most frequent class of the bin;
- regression: R² of the bin means.

``skill`` puts the three on one scale: 0 is chance, 1 a perfect prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FOLDS = 5
METRIC_NAMES = {"roc_auc": "ROC AUC", "balanced_accuracy": "balanced accuracy", "r2": "R²"}


@dataclass(frozen=True, slots=True)
class Labels:
    """The target as the scores need it: one value per row, and the folds."""

    y: np.ndarray  # classification: class codes 0..k-1; regression: values
    classes: int  # 0 for regression
    positive: int  # binary: the code of the positive class; else -1
    fold: np.ndarray  # each row's fold 0..FOLDS-1

    @property
    def metric(self) -> str:
        if self.classes == 0:
            return "r2"
        return "roc_auc" if self.classes == 2 else "balanced_accuracy"


def make_labels(y: np.ndarray, classes: int, positive: int, *, seed: int = 0) -> Labels:
    """Rows go to ``FOLDS`` folds at random (fixed by ``seed``)."""
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(y)) % FOLDS
    return Labels(y=y, classes=classes, positive=positive, fold=fold)


def oof_score(codes: np.ndarray, levels: int, labels: Labels) -> float:
    """The out-of-fold score of predicting ``labels`` by the bin means of ``codes``.

    >>> y = np.array([0, 1] * 50)
    >>> labels = make_labels(y, 2, 1)
    >>> oof_score(y.copy(), 2, labels), round(oof_score(np.zeros(100, np.int64), 1, labels), 2)
    (1.0, 0.5)
    """
    fold, n = labels.fold, len(codes)
    if labels.classes == 0:
        y = labels.y.astype(float)
        peak = float(np.abs(y).max(initial=0.0))
        if 0 < peak < np.inf:  # R² does not depend on the scale; squares of 1e200 overflow
            y = y / peak
        key = fold * levels + codes
        sums = np.bincount(key, weights=y, minlength=FOLDS * levels).reshape(FOLDS, levels)
        rows = np.bincount(key, minlength=FOLDS * levels).reshape(FOLDS, levels)
        train_sums, train_rows = sums.sum(axis=0) - sums, rows.sum(axis=0) - rows
        prior = (y.sum() - np.bincount(fold, weights=y, minlength=FOLDS)) / np.maximum(
            n - np.bincount(fold, minlength=FOLDS), 1)
        pred = (train_sums[fold, codes] + prior[fold]) / (train_rows[fold, codes] + 1)
        total = float(((y - y.mean()) ** 2).sum())
        return 0.0 if total <= 0 else 1.0 - float(((y - pred) ** 2).sum()) / total
    k = labels.classes
    key = (fold * levels + codes) * k + labels.y
    counts = np.bincount(key, minlength=FOLDS * levels * k).reshape(FOLDS, levels, k)
    train = counts.sum(axis=0) - counts  # per held-out fold: counts of the other folds
    prior = train.sum(axis=1)  # (folds, k)
    prior = prior / np.maximum(prior.sum(axis=1, keepdims=True), 1)
    held = train[fold, codes].astype(float) + prior[fold]  # one pseudo-row of the prior
    if k == 2:  # per fold, so that the folds' different priors do not rank rows
        share = held[:, labels.positive] / held.sum(axis=1)
        positive = labels.y == labels.positive
        return float(np.mean([auc(positive[fold == f], share[fold == f]) for f in range(FOLDS)]))
    return balanced_accuracy(labels.y, held.argmax(axis=1), k)


def skill(metric: str, value: float, classes: int) -> float:
    """``value`` of ``metric`` on a scale where 0 is chance and 1 is perfect.

    >>> skill("roc_auc", 0.95, 2), skill("balanced_accuracy", 0.55, 10), skill("r2", 0.9, 0)
    (0.9, 0.5, 0.9)
    """
    if metric == "roc_auc":
        return round(2 * value - 1, 10)
    if metric == "balanced_accuracy":
        chance = 1 / classes
        return round((value - chance) / (1 - chance), 10)
    return value


def threshold(metric: str, wanted: float, classes: int) -> float:
    """The value of ``metric`` whose ``skill`` is ``wanted``.

    >>> threshold("roc_auc", 0.9, 2), threshold("balanced_accuracy", 0.5, 10)
    (0.95, 0.55)
    """
    if metric == "roc_auc":
        return round((wanted + 1) / 2, 10)
    if metric == "balanced_accuracy":
        chance = 1 / classes
        return round(chance + wanted * (1 - chance), 10)
    return wanted


def auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by average ranks (ties count one half); 0.5 when a class is missing.

    >>> auc(np.array([False, False, True, True]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    if n1 == 0 or n0 == 0:
        return 0.5
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def balanced_accuracy(y: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    """Mean recall over the classes present.

    >>> balanced_accuracy(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0]), 2)
    0.5
    """
    rows = np.bincount(y, minlength=classes)
    hits = np.bincount(y[predicted == y], minlength=classes)
    seen = rows > 0
    return float((hits[seen] / rows[seen]).mean())
