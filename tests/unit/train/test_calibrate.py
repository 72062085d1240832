"""Calibration, thresholds and class weights, chosen on out-of-fold predictions."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from loopml.evaluate import metric_values
from loopml.train._calibrate import Calibrator, choose_calibration, choose_threshold, class_weights
from tests.conftest import sklearn_frame


def oof(name: str, model: object, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold class probabilities of ``model`` on a scikit-learn dataset, and its labels."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    frame = sklearn_frame(name)
    X, y = frame.drop("target").to_numpy(), frame["target"].to_numpy()
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    return cross_val_predict(model, X, y, cv=folds, method="predict_proba"), y


def log_loss(y: np.ndarray, proba: np.ndarray, classes: list) -> float:
    return float(metric_values("log_loss", y, proba, classes=classes)[0])


def test_an_overconfident_model_is_calibrated_and_it_helps_on_rows_it_did_not_see() -> None:
    """Naive Bayes on breast cancer is badly overconfident: a calibration fitted on half the
    out-of-fold rows lowers log loss on the other half; it pickles and keeps rows summing
    to 1."""
    from sklearn.naive_bayes import GaussianNB

    proba, y = oof("breast_cancer", GaussianNB())
    rng = np.random.default_rng(0)
    first = rng.permutation(len(y)) < len(y) // 2
    cal = choose_calibration(proba[first], y[first], [0, 1], seed=0)
    assert cal is not None and cal.method in ("isotonic", "sigmoid", "temperature")
    assert cal.log_loss_after < 0.8 * cal.log_loss_before
    assert f"{cal.log_loss_before:.4f} -> {cal.log_loss_after:.4f}" in cal.describe()
    rest = ~first
    after = cal.transform(proba[rest])
    assert np.allclose(after.sum(axis=1), 1) and after.shape == proba[rest].shape
    assert log_loss(y[rest], after, [0, 1]) < 0.7 * log_loss(y[rest], proba[rest], [0, 1])
    again = pickle.loads(pickle.dumps(cal))
    assert np.allclose(again.transform(proba[rest]), after)


def test_a_well_calibrated_model_is_left_alone() -> None:
    """Scores drawn with exactly the probabilities they state, and a logistic regression on
    breast cancer, get no calibration."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(3)
    p = rng.uniform(0.02, 0.98, 4000)
    y = np.where(rng.uniform(size=p.size) < p, "yes", "no")
    assert choose_calibration(np.column_stack([1 - p, p]), y, ["no", "yes"], seed=0) is None
    proba, y = oof("breast_cancer", make_pipeline(StandardScaler(),
                                                  LogisticRegression(max_iter=2000)))
    assert choose_calibration(proba, y, [0, 1], seed=0) is None


def test_multiclass_uses_temperature_and_tiny_data_none() -> None:
    """Wine (three classes): an overconfident naive Bayes gets temperature
    scaling; too few rows to judge give None."""
    from sklearn.naive_bayes import GaussianNB

    proba, y = oof("wine", GaussianNB())
    cal = choose_calibration(proba, y, [0, 1, 2], seed=0)
    assert cal is not None and cal.method == "temperature"
    assert cal.params_["temperature"] > 1  # overconfident: the probabilities are softened
    assert np.allclose(cal.transform(proba).sum(axis=1), 1)
    assert choose_calibration(proba[:30], y[:30], [0, 1, 2], seed=0) is None
    with pytest.raises(ValueError):
        Calibrator("platt")


def imbalanced() -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities of a logistic regression on a 92/8 imbalanced problem."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    X, y = make_classification(4000, n_features=10, n_informative=4, weights=[0.92],
                               flip_y=0.02, class_sep=0.7, random_state=0)
    labels = np.where(y == 1, "fraud", "ok")
    proba = cross_val_predict(LogisticRegression(max_iter=1000), X, labels, cv=5,
                              method="predict_proba")
    return proba, labels


def test_f1_threshold_on_an_imbalanced_problem_beats_one_half() -> None:
    """With 8% positives, f1 is best below 0.5: the chosen threshold lowers it and scores a
    better f1 than 0.5 on the out-of-fold rows; ROC AUC and multiclass get no threshold."""
    proba, y = imbalanced()
    classes = ["fraud", "ok"]
    t = choose_threshold(proba, y, classes, metric="f1", positive_label="fraud")
    assert t is not None and 0.05 < t < 0.5

    def f1_at(threshold: float) -> float:
        pred = np.where(proba[:, 0] >= threshold, "fraud", "ok")
        tp = np.sum((pred == "fraud") & (y == "fraud"))
        return 2 * tp / (np.sum(pred == "fraud") + np.sum(y == "fraud"))

    assert f1_at(t) > f1_at(0.5) + 0.02
    assert choose_threshold(proba, y, classes, metric="roc_auc", positive_label="fraud") is None
    three = np.column_stack([proba, np.zeros(len(y))])
    assert choose_threshold(three, y, [*classes, "x"], metric="f1", positive_label=None) is None


def test_accuracy_threshold_stays_at_one_half_on_a_balanced_calibrated_model() -> None:
    """Breast cancer with a logistic regression: nothing is gained by moving the threshold
    for accuracy, so it stays 0.5."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    proba, y = oof("breast_cancer", make_pipeline(StandardScaler(),
                                                  LogisticRegression(max_iter=2000)))
    assert choose_threshold(proba, y, [0, 1], metric="accuracy", positive_label=None) == 0.5


def test_class_weights_only_for_imbalanced_classes() -> None:
    """8% positives get balanced weights (the rare class weighs more); wine's classes do not."""
    _, y = imbalanced()
    weights = class_weights(y)
    assert weights is not None and weights["fraud"] > 5 * weights["ok"]
    counts = {c: int((y == c).sum()) for c in weights}
    assert sum(weights[c] * n for c, n in counts.items()) == pytest.approx(len(y), rel=1e-3)
    assert class_weights(sklearn_frame("wine")["target"].to_numpy()) is None
