"""The learners the search can try, each with defaults and a search space.

A learner is a small object: ``tasks``, ``defaults(task)``, ``space(trial, task)`` and
``make(params, task, seed, threads)``. The table maps short keys to import paths so that other
packages can add learners and heavy libraries load only when a learner is used.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin, clone

from loopml.core.errors import ConfigError, unknown_name

LEARNERS = {
    "linear": "loopml.train._learners:Linear",
    "lightgbm": "loopml.train._learners:LightGBM",
    "xgboost": "loopml.train._learners:XGBoost",
    "kmeans": "loopml.train._learners:KMeans",
}


def get_learner(key: str) -> Any:
    if key not in LEARNERS:
        raise ConfigError(
            unknown_name("learner", key, LEARNERS),
            hint="Set training.learners in loopml.yaml to learners from the list.",
        )
    module, _, name = LEARNERS[key].partition(":")
    return getattr(importlib.import_module(module), name)()


def available_threads() -> int:
    """The cores this process may use (respects CPU affinity and cgroup pinning)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Linear:
    """Logistic regression or ridge regression: the baseline every model must beat."""

    tasks = ("classification", "regression")
    max_trials = 8
    weight = 0.25  # share of the search time, relative to the boosted learners

    def defaults(self, task: str) -> dict[str, Any]:
        return {"C": 1.0} if task == "classification" else {"alpha": 1.0}

    def space(self, trial: Any, task: str) -> dict[str, Any]:
        if task == "classification":
            return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True)}

    def make(self, params: dict[str, Any], task: str, seed: int, threads: int) -> Any:
        from sklearn.linear_model import LogisticRegression, Ridge

        if task == "classification":
            return LogisticRegression(C=params["C"], max_iter=500, random_state=seed)
        return Ridge(alpha=params["alpha"], random_state=seed)


_BOOSTING_DEFAULTS = {
    "n_estimators": 300, "learning_rate": 0.05, "subsample": 0.9, "colsample_bytree": 0.9,
}


def _boosting_space(trial: Any) -> dict[str, Any]:
    """The search space gradient-boosting learners share."""
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 800, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


class LightGBM:
    """Gradient-boosted trees (LightGBM): the strongest general tabular learner."""

    tasks = ("classification", "regression")
    max_trials = 200
    weight = 1.0

    def defaults(self, task: str) -> dict[str, Any]:
        return {**_BOOSTING_DEFAULTS, "num_leaves": 31, "min_child_samples": 20,
                "reg_lambda": 0.01}

    def space(self, trial: Any, task: str) -> dict[str, Any]:
        return {
            **_boosting_space(trial),
            "num_leaves": trial.suggest_int("num_leaves", 8, 256, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 200, log=True),
        }

    def make(self, params: dict[str, Any], task: str, seed: int, threads: int) -> Any:
        import lightgbm as lgb

        cls = lgb.LGBMClassifier if task == "classification" else lgb.LGBMRegressor
        return cls(
            **params, subsample_freq=1, n_jobs=threads, random_state=seed, verbose=-1
        )


class XGBoost:
    """Gradient-boosted trees (XGBoost, histogram method)."""

    tasks = ("classification", "regression")
    max_trials = 200
    weight = 1.0

    def defaults(self, task: str) -> dict[str, Any]:
        return {**_BOOSTING_DEFAULTS, "max_depth": 6, "min_child_weight": 1.0,
                "reg_lambda": 1.0}

    def space(self, trial: Any, task: str) -> dict[str, Any]:
        return {
            **_boosting_space(trial),
            "max_depth": trial.suggest_int("max_depth", 3, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
        }

    def make(self, params: dict[str, Any], task: str, seed: int, threads: int) -> Any:
        import xgboost as xgb

        if task == "classification":
            return EncodedClassifier(
                xgb.XGBClassifier(**params, tree_method="hist", n_jobs=threads, random_state=seed)
            )
        return xgb.XGBRegressor(**params, tree_method="hist", n_jobs=threads, random_state=seed)


class KMeans:
    """k-means clustering; the search chooses the number of clusters."""

    tasks = ("clustering",)
    max_trials = 11
    weight = 1.0

    def defaults(self, task: str) -> dict[str, Any]:
        return {"n_clusters": 3}

    def space(self, trial: Any, task: str) -> dict[str, Any]:
        return {"n_clusters": trial.suggest_int("n_clusters", 2, 12)}

    def make(self, params: dict[str, Any], task: str, seed: int, threads: int) -> Any:
        from sklearn.cluster import KMeans as _KMeans

        return _KMeans(n_clusters=params["n_clusters"], n_init=3, random_state=seed)


class EncodedClassifier(ClassifierMixin, BaseEstimator):
    """Wrap a classifier that needs labels 0..k-1 so it takes and returns the real labels."""

    def __init__(self, estimator: Any):
        self.estimator = estimator

    def fit(self, X: Any, y: Any, **kwargs: Any) -> EncodedClassifier:
        from sklearn.preprocessing import LabelEncoder

        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        self.estimator_ = clone(self.estimator).fit(X, self.encoder_.transform(y), **kwargs)
        return self

    def predict(self, X: Any) -> Any:
        return self.encoder_.inverse_transform(self.estimator_.predict(X))

    def predict_proba(self, X: Any) -> Any:
        return self.estimator_.predict_proba(X)

    @property
    def feature_importances_(self) -> Any:
        return self.estimator_.feature_importances_
