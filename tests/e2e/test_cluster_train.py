"""Final fits by the workers of a 2-process ``LocalCluster`` together (``lightgbm.dask``,
``xgboost.dask``): they come back as the local estimator a fit in one process gives, with the
real class labels, and score like it on held-out rows."""

from __future__ import annotations

import numpy as np
import pytest

from loopml.train._dask_fit import fit_on_cluster
from loopml.train._learners import EncodedClassifier, get_learner

pytestmark = [pytest.mark.slow]

PARAMS = {
    "lightgbm": {"learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 10,
                 "n_estimators": 80},
    "xgboost": {"learning_rate": 0.1, "max_depth": 4, "n_estimators": 80},
}


def _data(task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, 6))
    signal = X[:, 0] + 0.8 * X[:, 1] * X[:, 2] - 0.5 * X[:, 3]
    if task == "classification":
        y = np.where(signal + rng.normal(scale=0.7, size=len(X)) > 0, "late", "on time")
    else:
        y = signal + rng.normal(scale=0.3, size=len(X))
    return X[:2400], y[:2400], X[2400:], y[2400:]


def _quality(model, X, y, task: str) -> float:
    from sklearn.metrics import r2_score, roc_auc_score

    if task == "classification":
        late = list(model.classes_).index("late")
        return roc_auc_score(y == "late", model.predict_proba(X)[:, late])
    return r2_score(y, model.predict(X))


@pytest.mark.parametrize(("learner", "task"), [("lightgbm", "classification"),
                                               ("xgboost", "regression")])
def test_a_fit_on_the_workers_is_a_local_model_as_good_as_one_fitted_here(
    cluster: str, learner: str, task: str
) -> None:
    """Same estimator type and classes as a local fit; held-out AUC or R² within 0.03 of it
    (the workers build histograms from their own rows, so the trees differ slightly)."""
    from distributed import Client

    X, y, X_test, y_test = _data(task)
    weights = np.where(y == "late", 1.5, 1.0) if task == "classification" else None
    spec = get_learner(learner)
    local = spec.make(PARAMS[learner], task, 0, 1)
    spec.fit(local, X, y, sample_weight=weights)
    with Client(cluster, set_as_default=False) as client:
        remote = fit_on_cluster(client, learner, spec.make(PARAMS[learner], task, 0, 1), X, y,
                                categorical=0, sample_weight=weights)
    assert type(remote) is type(local)
    if isinstance(remote, EncodedClassifier):
        assert type(remote.estimator_) is type(local.estimator_)
    if task == "classification":
        assert list(remote.classes_) == list(local.classes_) == ["late", "on time"]
        assert set(remote.predict(X_test)) <= {"late", "on time"}
    here, there = _quality(local, X_test, y_test, task), _quality(remote, X_test, y_test, task)
    assert here > 0.7
    assert abs(here - there) <= 0.03, (here, there)
