"""The learners the search can try, each with a search space and a way to fit.

A learner is a small object: ``tasks``, ``view`` (the feature view it learns from: ``tree``
or ``dense``), ``defaults(task)``, ``space(trial, task)``, ``make(params, task, seed,
threads)`` and ``fit(model, X, y, ...)`` (early stopping on a validation fold where the
learner has it). Known-good configurations per learner live in ``_portfolio``. The table
maps short keys to import paths so that heavy libraries load only when a learner is used.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from loopml.core.errors import ConfigError, unknown_name

LEARNERS = {
    "linear": "loopml.train._learners:Linear",
    "lightgbm": "loopml.train._learners:LightGBM",
    "xgboost": "loopml.train._learners:XGBoost",
    "random_forest": "loopml.train._learners:RandomForest",
    "extra_trees": "loopml.train._learners:ExtraTrees",
    "hist_gbm": "loopml.train._learners:HistGBM",
    "knn": "loopml.train._learners:KNN",
    "kmeans": "loopml.train._learners:KMeans",
}
DETERMINISTIC_THREADS = 2  # the same on every machine, so that a seed gives the same model
MAX_ROUNDS = 2000  # boosting rounds at most; early stopping on the validation fold ends sooner
PATIENCE = 50  # rounds without improvement before boosting stops


def get_learner(key: str) -> Any:
    if key not in LEARNERS:
        raise ConfigError(
            unknown_name("learner", key, LEARNERS),
            hint="Set training.learners in loopml.yaml to learners from the list.",
        )
    module, _, name = LEARNERS[key].partition(":")
    return getattr(importlib.import_module(module), name)()


class _Learner:
    tasks: tuple[str, ...] = ("classification", "regression")
    view = "tree"
    weighted = True  # fit takes sample weights (class imbalance)
    boosted = False  # fit stops early on a validation fold and reports its rounds
    rounds_param = ""  # the parameter that sets the rounds of a refit without early stopping

    def defaults(self, task: str) -> dict[str, Any]:
        return {}

    def fit(self, model: Any, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None,
            categorical: int = 0, sample_weight: Any = None) -> Any:
        """Fit ``model``; boosted learners stop early on (``X_val``, ``y_val``)."""
        kwargs = {} if sample_weight is None or not self.weighted else {
            "sample_weight": sample_weight}
        return model.fit(X, y, **kwargs)

    def rounds(self, model: Any) -> int | None:
        """Boosting rounds the fitted model kept (None: not a boosted learner)."""
        return None


class Linear(_Learner):
    """Logistic regression or ridge regression on the dense view: the baseline to beat."""

    view = "dense"
    max_trials = 8

    def defaults(self, task: str) -> dict[str, Any]:
        return {"C": 1.0} if task == "classification" else {"alpha": 1.0}

    def space(self, trial: Any, task: str) -> dict[str, Any]:
        if task == "classification":
            return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True)}

    def make(self, params: dict[str, Any], task: str, seed: int, threads: int,
             deterministic: bool = False) -> Any:
        from sklearn.linear_model import LogisticRegression, Ridge

        if task == "classification":
            return LogisticRegression(C=params["C"], max_iter=1000, random_state=seed)
        return Ridge(alpha=params["alpha"], random_state=seed)


def _boosting_space(trial: Any) -> dict[str, Any]:
    """The search space gradient-boosting learners share (rounds: early stopping)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


class LightGBM(_Learner):
    """Gradient-boosted trees (LightGBM) with native categoricals: the strongest general
    tabular learner."""

    boosted = True
    rounds_param = "n_estimators"
    max_trials = 200

    def defaults(self, task: str) -> dict[str, Any]:
        return {"learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 20,
                "subsample": 0.9, "colsample_bytree": 0.9, "reg_lambda": 0.01}

    def space(self, trial: Any, task: str) -> dict[str, Any]:
        return {
            **_boosting_space(trial),
            "num_leaves": trial.suggest_int("num_leaves", 4, 256, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 2, 100, log=True),
        }

    def make(self, params: dict[str, Any], task: str, seed: int, threads: int,
             deterministic: bool = False) -> Any:
        import lightgbm as lgb

        cls = lgb.LGBMClassifier if task == "classification" else lgb.LGBMRegressor
        params = {"n_estimators": MAX_ROUNDS, **params}
        extra = {"deterministic": True, "force_row_wise": True} if deterministic else {}
        bagging = {"subsample_freq": 1} if params.get("subsample", 1.0) < 1.0 else {}
        return cls(**params, **bagging, **extra, n_jobs=threads, random_state=seed,
                   verbose=-1)

    def fit(self, model: Any, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None,
            categorical: int = 0, sample_weight: Any = None) -> Any:
        import lightgbm as lgb

        kwargs: dict[str, Any] = {"sample_weight": sample_weight,
                                  "categorical_feature": list(range(categorical)) or "auto"}
        if X_val is not None:
            if hasattr(model, "predict_proba"):  # eval_y is not label-encoded for us
                y_val = np.searchsorted(np.unique(y), y_val)
            kwargs["eval_X"], kwargs["eval_y"] = (X_val,), (y_val,)
            kwargs["callbacks"] = [lgb.early_stopping(PATIENCE, verbose=False)]
        return model.fit(X, y, **kwargs)

    def rounds(self, model: Any) -> int | None:
        best = getattr(model, "best_iteration_", None)
        return int(best) if best else int(model.n_estimators)


class XGBoost(_Learner):
    """Gradient-boosted trees (XGBoost, histogram method)."""

    boosted = True
    rounds_param = "n_estimators"
    max_trials = 200

    def defaults(self, task: str) -> dict[str, Any]:
        return {"learning_rate": 0.05, "max_depth": 6, "min_child_weight": 1.0,
                "subsample": 0.9, "colsample_bytree": 0.9, "reg_lambda": 1.0}

    def space(self, trial: Any, task: str) -> dict[str, Any]:
        return {
            **_boosting_space(trial),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
        }

    def make(self, params: dict[str, Any], task: str, seed: int, threads: int,
             deterministic: bool = False) -> Any:
        import xgboost as xgb

        params = {"n_estimators": MAX_ROUNDS, **params}
        common = {"tree_method": "hist", "n_jobs": threads, "random_state": seed}
        if task == "classification":
            return EncodedClassifier(xgb.XGBClassifier(**params, **common))
        return xgb.XGBRegressor(**params, **common)

    def fit(self, model: Any, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None,
            categorical: int = 0, sample_weight: Any = None) -> Any:
        inner = model.estimator if isinstance(model, EncodedClassifier) else model
        if X_val is None:
            inner.set_params(early_stopping_rounds=None)
            return model.fit(X, y, sample_weight=sample_weight)
        inner.set_params(early_stopping_rounds=PATIENCE)
        return model.fit(X, y, sample_weight=sample_weight, eval_set=[(X_val, y_val)],
                         verbose=False)

    def rounds(self, model: Any) -> int | None:
        inner = model.estimator_ if isinstance(model, EncodedClassifier) else model
        try:
            return int(inner.best_iteration) + 1
        except AttributeError:  # fitted without early stopping
            return int(inner.n_estimators)


class RandomForest(_Learner):
    """Random forest: strong without tuning, and different enough from boosting to ensemble."""

    max_trials = 20
    _names = ("RandomForestClassifier", "RandomForestRegressor")

    def defaults(self, task: str) -> dict[str, Any]:
        return {"n_estimators": 300, "max_features": "sqrt" if task == "classification"
                else 1.0, "min_samples_leaf": 1}

    def space(self, trial: Any, task: str) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 100, 400, log=True),
            "max_features": trial.suggest_float("max_features", 0.1, 1.0),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
        }

    def make(self, params: dict[str, Any], task: str, seed: int, threads: int,
             deterministic: bool = False) -> Any:
        import sklearn.ensemble as ens

        cls = getattr(ens, self._names[0] if task == "classification" else self._names[1])
        return cls(**params, n_jobs=threads, random_state=seed)


class ExtraTrees(RandomForest):
    """Extremely randomised trees: like the forest, cheaper, often as good."""

    _names = ("ExtraTreesClassifier", "ExtraTreesRegressor")


class HistGBM(_Learner):
    """scikit-learn's histogram gradient boosting, stopped early on the validation fold."""

    boosted = True
    rounds_param = "max_iter"
    max_trials = 40

    def defaults(self, task: str) -> dict[str, Any]:
        return {"learning_rate": 0.1, "max_leaf_nodes": 31, "l2_regularization": 1e-4}

    def space(self, trial: Any, task: str) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 128, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-4, 10.0, log=True),
        }

    def make(self, params: dict[str, Any], task: str, seed: int, threads: int,
             deterministic: bool = False) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if task == "classification" else (
            HistGradientBoostingRegressor)
        params = {"max_iter": 500, **params}
        return cls(**params, early_stopping=False, random_state=seed)

    def fit(self, model: Any, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None,
            categorical: int = 0, sample_weight: Any = None) -> Any:
        if X_val is None:
            return model.fit(X, y, sample_weight=sample_weight)
        model.set_params(early_stopping=True, n_iter_no_change=20)
        return model.fit(X, y, sample_weight=sample_weight, X_val=X_val, y_val=y_val)

    def rounds(self, model: Any) -> int | None:
        return int(model.n_iter_)


class KNN(_Learner):
    """k nearest neighbours on the dense (scaled) view."""

    view = "dense"
    weighted = False
    max_trials = 10

    def defaults(self, task: str) -> dict[str, Any]:
        return {"n_neighbors": 10, "weights": "distance"}

    def space(self, trial: Any, task: str) -> dict[str, Any]:
        return {"n_neighbors": trial.suggest_int("n_neighbors", 3, 50, log=True),
                "weights": trial.suggest_categorical("weights", ["uniform", "distance"])}

    def make(self, params: dict[str, Any], task: str, seed: int, threads: int,
             deterministic: bool = False) -> Any:
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        cls = KNeighborsClassifier if task == "classification" else KNeighborsRegressor
        return cls(**params, n_jobs=threads)

    def fit(self, model: Any, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None,
            categorical: int = 0, sample_weight: Any = None) -> Any:
        model.set_params(n_neighbors=max(1, min(model.n_neighbors, len(y) - 1)))
        return model.fit(X, y)


class KMeans(_Learner):
    """k-means clustering; the search chooses the number of clusters."""

    tasks = ("clustering",)
    view = "dense"
    max_trials = 11

    def defaults(self, task: str) -> dict[str, Any]:
        return {"n_clusters": 3}

    def space(self, trial: Any, task: str) -> dict[str, Any]:
        return {"n_clusters": trial.suggest_int("n_clusters", 2, 12)}

    def make(self, params: dict[str, Any], task: str, seed: int, threads: int,
             deterministic: bool = False) -> Any:
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
        if "eval_set" in kwargs:
            kwargs["eval_set"] = [(Xv, self.encoder_.transform(yv))
                                  for Xv, yv in kwargs["eval_set"]]
        self.estimator_ = clone(self.estimator).fit(X, self.encoder_.transform(y), **kwargs)
        return self

    def predict(self, X: Any) -> Any:
        return self.encoder_.inverse_transform(self.estimator_.predict(X))

    def predict_proba(self, X: Any) -> Any:
        return self.estimator_.predict_proba(X)

    @property
    def feature_importances_(self) -> Any:
        return self.estimator_.feature_importances_
