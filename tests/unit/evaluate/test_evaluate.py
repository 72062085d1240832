"""Evaluation on the test split: metrics agree with scikit-learn, curves are usable."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from sklearn import metrics as m
from sklearn.pipeline import Pipeline

from loopml.core.errors import ConfigError
from loopml.evaluate import default_metric, evaluate, score
from loopml.features import build_features
from loopml.quality import infer_contract
from loopml.train._learners import get_learner
from tests.conftest import sklearn_frame


def fitted(name: str, task: str, learner: str) -> tuple[Pipeline, pl.DataFrame, str | None]:
    frame = sklearn_frame(name)
    target: str | None = "target"
    if task == "clustering":
        frame, target = frame.drop("target"), None
    contract = infer_contract(frame, source=name, target=target)
    cols = [c for c in contract.names if c != target]
    lrn = get_learner(learner)
    model = Pipeline([("features", build_features(contract, columns=cols, task=task)),
                      ("model", lrn.make(lrn.defaults(task), task, 0, 1))])
    train, test = frame[::2], frame[1::2]
    model.fit(train, None if target is None else train[target].to_numpy())
    return model, test, target


def test_binary_metrics_match_sklearn() -> None:
    """Binary metrics equal scikit-learn's; ROC and PR curves and the confusion matrix exist."""
    model, test, target = fitted("breast_cancer", "classification", "linear")
    e = evaluate(model, test, task="classification", target=target)
    y = test[target].to_numpy()
    proba = model.predict_proba(test)[:, 1]
    assert math.isclose(e.metrics["roc_auc"], m.roc_auc_score(y, proba))
    assert math.isclose(e.metrics["accuracy"], m.accuracy_score(y, model.predict(test)))
    assert sum(map(sum, e.confusion)) == test.height
    fpr, tpr = e.roc
    assert fpr[0] == 0.0 and tpr[-1] == 1.0 and len(fpr) <= 200
    names, weights = e.feature_importance
    assert len(names) == len(weights) <= 25 and 0 < sum(weights) <= 1 + 1e-9
    assert list(weights) == sorted(weights, reverse=True) and names[0].startswith("numeric__")


def test_multiclass_regression_clustering() -> None:
    """Each task reports its own metrics and pictures."""
    model, test, target = fitted("iris", "classification", "lightgbm")
    e = evaluate(model, test, task="classification", target=target)
    assert e.labels == ("0", "1", "2") and e.roc is None and e.metrics["roc_auc"] > 0.9
    model, test, target = fitted("diabetes", "regression", "linear")
    e = evaluate(model, test, task="regression", target=target)
    assert e.metric == "rmse" and not e.greater_is_better
    pred = model.predict(test)
    assert math.isclose(e.metrics["rmse"], float(np.sqrt(m.mean_squared_error(test[target], pred))))
    assert len(e.residuals[0]) == test.height
    model, test, _ = fitted("iris", "clustering", "kmeans")
    e = evaluate(model, test, task="clustering", target=None)
    assert sum(e.cluster_sizes) == test.height and -1 <= e.metrics["silhouette"] <= 1


def test_score_uses_the_same_metric_code() -> None:
    """score() gives the same number as the evaluation's primary metric."""
    model, test, target = fitted("breast_cancer", "classification", "lightgbm")
    e = evaluate(model, test, task="classification", target=target)
    assert score("roc_auc", model, test, test[target].to_numpy()) == pytest.approx(e.score)


def test_metric_must_fit_the_task() -> None:
    """Asking for RMSE on a classification task is a ConfigError listing valid metrics."""
    assert default_metric("regression") == "rmse"
    with pytest.raises(ConfigError) as info:
        default_metric("classification", "rmse")
    assert "roc_auc" in (info.value.hint or "")
