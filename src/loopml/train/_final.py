"""The model the search returns: one estimator over one or more members.

A member is a scikit-learn Pipeline (its own fitted feature view, then the model) refit on
train + validation, or the bag of its fold models when a refit did not fit in the budget.
The ensemble averages its members' probabilities (or values) with the greedy weights, then
applies the calibration and the decision threshold chosen on out-of-fold predictions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator

from loopml.train._cv import aligned_proba

if TYPE_CHECKING:
    from collections.abc import Sequence

REFIT_GROWTH = 1.1  # a refit on all rows gets this many times the early-stopped rounds


class FoldBag(BaseEstimator):
    """The fold models of one candidate, averaged: a final model without a refit."""

    def __init__(self, models: Sequence[Any], *, task: str, classes: Sequence[Any] | None):
        self.models = list(models)
        self.task = task
        self.classes = classes

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.classes)

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.mean([aligned_proba(m, X, self.classes) for m in self.models], axis=0)

    def predict(self, X: Any) -> np.ndarray:
        if self.task == "classification":
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        return np.mean([np.asarray(m.predict(X), dtype=float) for m in self.models], axis=0)


class SearchedModel(BaseEstimator):
    """The search's final model: weighted members, then calibration and threshold.

    Takes a polars frame holding (at least) ``feature_names_in_``; ``predict``,
    ``predict_proba`` and ``classes_`` as a scikit-learn classifier (or ``predict`` as a
    regressor); ``feature_importances_`` over the raw feature columns.
    """

    def __init__(self, members: Sequence[tuple[Any, float]], *, task: str,
                 classes: Sequence[Any] | None, columns: Sequence[str],
                 calibrator: Any = None, threshold: float | None = None,
                 positive: int | None = None):
        self.members = list(members)
        self.task = task
        self.classes = classes
        self.columns = columns
        self.calibrator = calibrator
        self.threshold = threshold
        self.positive = positive

    @property
    def classes_(self) -> np.ndarray:
        if self.task != "classification":
            raise AttributeError("a regressor has no classes")
        return np.asarray(self.classes)

    @property
    def feature_names_in_(self) -> np.ndarray:
        return np.asarray(self.columns, dtype=object)

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.task != "classification":
            raise AttributeError("a regressor has no probabilities")
        proba = sum(w * aligned_proba(m, X, self.classes) for m, w in self.members)
        if self.calibrator is not None:
            proba = np.asarray(self.calibrator.transform(proba), dtype=np.float64)
        return proba  # type: ignore[return-value]

    def predict(self, X: Any) -> np.ndarray:
        if self.task != "classification":
            return sum(w * np.asarray(m.predict(X), dtype=float)  # type: ignore[return-value]
                       for m, w in self.members)
        return self.decide(self.predict_proba(X))

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """The labels ``predict`` gives for these probabilities (from ``predict_proba``): the
        decision threshold for a binary problem, else the most probable class. A caller that
        needs both scores the members once."""
        classes = self.classes_
        if self.threshold is not None and self.positive is not None and len(classes) == 2:
            positive = proba[:, self.positive] >= self.threshold
            return np.where(positive, classes[self.positive], classes[1 - self.positive])
        return classes[proba.argmax(axis=1)]

    @property
    def feature_importances_(self) -> np.ndarray:
        total = np.zeros(len(self.columns))
        for model, w in self.members:
            for pipe in getattr(model, "models", [model]):
                imp = raw_importances(pipe, self.columns)
                if imp is not None:
                    total += w * imp / len(getattr(model, "models", [model]))
        return total / total.sum() if total.sum() > 0 else total


def use_threads(model: Any, threads: int) -> None:
    """Let every learner of a fitted model predict on ``threads`` threads. Learners are fitted
    with the threads their search gave them (often one, beside other trials); a batch
    scoring in its own process uses the machine's cores instead. A served model keeps one.

    >>> from sklearn.ensemble import RandomForestClassifier
    >>> forest = RandomForestClassifier(n_jobs=1)
    >>> use_threads(FoldBag([forest], task="classification", classes=[0, 1]), 2)
    >>> forest.n_jobs
    2
    """
    if isinstance(model, SearchedModel):
        for member, _ in model.members:
            use_threads(member, threads)
    elif isinstance(model, FoldBag):
        for fold in model.models:
            use_threads(fold, threads)
    elif hasattr(model, "steps"):  # a Pipeline: its last step is the learner
        use_threads(model.steps[-1][1], threads)
    elif hasattr(model, "get_params") and "n_jobs" in model.get_params(deep=False):
        model.set_params(n_jobs=threads)


def raw_importances(pipeline: Any, columns: Sequence[str]) -> np.ndarray | None:
    """A fitted Pipeline's importances summed back onto the raw ``columns`` (one-hot,
    date-part and indicator columns count for the column they came from); None when the
    model has neither importances nor coefficients."""
    from loopml.evaluate import importances

    found = importances(pipeline)
    if found is None:
        return None
    names = [n.split("__", 1)[-1] for n in found[0]]
    values = found[1]
    if len(names) != len(values):
        return None
    ordered = sorted(columns, key=len, reverse=True)  # "a_b" before "a"
    where = {c: i for i, c in enumerate(columns)}
    out = np.zeros(len(columns))
    for name, v in zip(names, values, strict=True):
        name = name.removeprefix("missingindicator_")
        match = next((c for c in ordered if name == c or name.startswith(f"{c}_")), None)
        if match is not None:
            out[where[match]] += v
    return out
