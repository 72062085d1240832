"""The model search under a time budget, on real data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from loopml.core.config import TrainingConfig
from loopml.core.errors import ConfigError, TrainingError
from loopml.features import build_features
from loopml.quality import infer_contract
from loopml.train import LEARNERS, split, train
from loopml.train._learners import get_learner
from tests.conftest import sklearn_frame


def prepare(name: str, task: str) -> tuple:
    frame = sklearn_frame(name)
    target = None if task == "clustering" else "target"
    if task == "clustering":
        frame = frame.drop("target")
    contract = infer_contract(frame, source=name, target=target)
    columns = [c for c in contract.names if c != target]
    return frame, target, build_features(contract, columns=columns, task=task)


def search_inputs(name: str, task: str) -> tuple:
    """A frame, its target, and what ``train`` takes to build features: contract and columns."""
    frame = sklearn_frame(name)
    target = None if task == "clustering" else "target"
    if task == "clustering":
        frame = frame.drop("target")
    contract = infer_contract(frame, source=name, target=target)
    return frame, target, {"contract": contract,
                           "columns": [c for c in contract.names if c != target]}


@pytest.mark.parametrize("learner", sorted(LEARNERS))
def test_every_learner_fits_its_tasks(learner: str) -> None:
    """Each learner in the table builds, fits and predicts for every task it claims."""
    lrn = get_learner(learner)
    for task in lrn.tasks:
        frame, target, features = prepare(
            {"classification": "breast_cancer", "regression": "diabetes",
             "clustering": "iris"}[task], task)
        from sklearn.pipeline import Pipeline

        model = Pipeline([("features", clone(features)),
                          ("model", lrn.make(lrn.defaults(task), task, 0, 1))])
        y = None if target is None else frame[target].to_numpy()
        model.fit(frame, y)
        assert len(model.predict(frame.head(5))) == 5


def test_classification_search_beats_chance_and_records_candidates() -> None:
    """Searching breast cancer gives a model with a high out-of-fold AUC and a full leaderboard."""
    frame, target, inputs = search_inputs("breast_cancer", "classification")
    s = split(frame, target=target, task="classification")
    r = train(s, **inputs, task="classification", target=target,
              config=TrainingConfig(time_budget_s=6, learners=("linear", "lightgbm")))
    lb = r.leaderboard
    assert lb.metric == "roc_auc" and lb.best.cv_score > 0.95
    assert {c.learner for c in lb.candidates} - {"ensemble"} == {"linear", "lightgbm"}
    assert all(c.fit_time_s > 0 for c in lb.candidates)
    assert r.classes == (0, 1)
    proba = r.model.predict_proba(s.test.drop(target))
    assert proba.shape == (s.test.height, 2) and np.allclose(proba.sum(axis=1), 1)


def test_regression_and_clustering() -> None:
    """Regression minimises RMSE; clustering picks k by silhouette."""
    frame, target, inputs = search_inputs("diabetes", "regression")
    r = train(split(frame, target=target, task="regression"), **inputs,
              task="regression", target=target, config=TrainingConfig(time_budget_s=4))
    assert r.leaderboard.metric == "rmse" and not r.leaderboard.greater_is_better
    frame, _, inputs = search_inputs("iris", "clustering")
    r = train(split(frame, target=None, task="clustering"), **inputs,
              task="clustering", target=None,
              config=TrainingConfig(time_budget_s=4, learners=("kmeans",)))
    assert r.leaderboard.metric == "silhouette"
    assert 2 <= r.leaderboard.best.params["n_clusters"] <= 12


def test_unknown_learner_and_wrong_task() -> None:
    """An unknown learner name lists the valid ones; learners that cannot do the task fail."""
    with pytest.raises(ConfigError) as info:
        get_learner("lightgmb")
    assert "lightgbm" in info.value.message
    frame, _, inputs = search_inputs("iris", "clustering")
    with pytest.raises(TrainingError):
        train(split(frame, target=None, task="regression"), **inputs,
              task="regression", target=None,
              config=TrainingConfig(time_budget_s=2, learners=("kmeans",)))
