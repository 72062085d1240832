"""Compiled estimators and calibrators predict exactly as the scikit-learn forms, also after a
JSON + npz round trip."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from loopml.core.errors import NotCompilable
from loopml.train._calibrate import Calibrator
from loopml.train._compiled import (
    CompiledCalibrator,
    CompiledEstimator,
    compile_calibrator,
    compile_estimator,
)


def data(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    return getattr(datasets, f"load_{name}")(return_X_y=True)


def with_nan(X: np.ndarray, seed: int, share: float = 0.1) -> np.ndarray:
    """A copy of ``X`` with about ``share`` of its values missing."""
    X = X.astype(float)
    X[np.random.default_rng(seed).uniform(size=X.shape) < share] = np.nan
    return X


def new_rows(X: np.ndarray, seed: int, n: int = 150) -> np.ndarray:
    """Rows the model did not see: training rows shifted by noise, some values missing."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 0.3, (n, X.shape[1])) * np.nanstd(X, axis=0)
    return X[rng.integers(0, len(X), n)] + noise


def round_trip(compiled: CompiledEstimator | CompiledCalibrator) -> object:
    """``compiled`` written as JSON + npz and read back."""
    arrays: dict[str, np.ndarray] = {}
    spec = json.loads(json.dumps(compiled.to_spec(arrays, "model/")))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as stored:
        return type(compiled).from_spec(spec, dict(stored))


def assert_same(model: object, X_train: np.ndarray, X_new: np.ndarray) -> None:
    """The compiled model and its round trip predict as ``model`` on training rows, new rows
    and one row."""
    compiled = compile_estimator(model)
    for form in (compiled, round_trip(compiled)):
        assert isinstance(form, CompiledEstimator)
        for X in (X_train, X_new, X_new[:1]):
            if hasattr(model, "predict_proba"):
                np.testing.assert_allclose(form.predict_proba(X), model.predict_proba(X),
                                           rtol=0, atol=1e-12)  # fmt: skip
                assert form.classes_.dtype == model.classes_.dtype
                assert form.classes_.tolist() == model.classes_.tolist()
                expected = model.predict(X)
                got = form.predict(X)
                assert got.dtype == expected.dtype and got.tolist() == expected.tolist()
            else:
                np.testing.assert_allclose(form.predict(X), model.predict(X), rtol=0,
                                           atol=1e-12)  # fmt: skip


FORESTS = [
    ("RandomForestClassifier", "breast_cancer", "str"),
    ("ExtraTreesClassifier", "breast_cancer", "bool"),
    ("RandomForestClassifier", "wine", "int"),
    ("ExtraTreesClassifier", "iris", "str"),
    ("RandomForestRegressor", "diabetes", None),
    ("ExtraTreesRegressor", "diabetes", None),
]


def labels(y: np.ndarray, kind: str | None) -> np.ndarray:
    if kind == "str":
        return np.array(["class_a", "class_b", "class_c"])[y]
    if kind == "bool":
        return y == 1
    return y


@pytest.mark.parametrize(("name", "dataset", "kind"), FORESTS)
def test_a_forest_fitted_with_missing_values_predicts_as_scikit_learn(
        name: str, dataset: str, kind: str | None) -> None:
    """Forests fitted on data with NaN route NaN the way each split learned, like sklearn."""
    import sklearn.ensemble as ens

    X, y = data(dataset)
    X = with_nan(X, seed=1)
    model = getattr(ens, name)(n_estimators=50, random_state=0, n_jobs=1).fit(X, labels(y, kind))
    routes = np.concatenate([e.tree_.missing_go_to_left[e.tree_.children_left >= 0]
                             for e in model.estimators_])  # fmt: skip
    assert routes.any() and not routes.all()  # both directions are exercised
    assert_same(model, X, with_nan(new_rows(X, seed=2), seed=3))


def test_a_depth_limited_forest_and_rows_without_missing_values() -> None:
    """A forest fitted without NaN sends NaN where sklearn does; a shallow forest stops at
    its depth; a batch larger than one walk is walked in parts."""
    from sklearn.ensemble import RandomForestClassifier

    X, y = data("wine")
    model = RandomForestClassifier(n_estimators=30, max_depth=3, random_state=0).fit(X, y)
    assert_same(model, X, new_rows(X, seed=4, n=10_000))
    assert_same(model, X, with_nan(new_rows(X, seed=4), seed=5, share=0.3))


def boosted(key: str, task: str, X: np.ndarray, y: np.ndarray, *, rounds: int = 50,
            val: tuple[np.ndarray, np.ndarray] | None = None, categorical: int = 0,
            **params: object) -> object:  # fmt: skip
    """A boosted model made and fitted by loopml's learner, as the search does."""
    from loopml.train._learners import get_learner

    learner = get_learner(key)
    model = learner.make({**learner.defaults(task), "n_estimators": rounds, **params}, task,
                         seed=0, threads=1)  # fmt: skip
    X_val, y_val = val if val is not None else (None, None)
    return learner.fit(model, X, y, X_val=X_val, y_val=y_val, categorical=categorical)


@pytest.mark.parametrize("key", ["lightgbm", "xgboost"])
@pytest.mark.parametrize(("dataset", "kind"), [("breast_cancer", "str"), ("wine", "int"),
                                               ("diabetes", None)])
def test_a_booster_predicts_as_its_scikit_learn_wrapper(key: str, dataset: str,
                                                        kind: str | None) -> None:
    """LightGBM and XGBoost (binary, multiclass, regression; XGBoost classifiers wrapped in
    EncodedClassifier) give the wrapper's probabilities, labels and values, NaN included."""
    X, y = data(dataset)
    X = with_nan(X, seed=6)
    task = "regression" if kind is None else "classification"
    model = boosted(key, task, X, labels(y, kind))
    assert_same(model, X, with_nan(new_rows(X, seed=7), seed=8))


def test_lightgbm_with_a_categorical_feature_and_early_stopping() -> None:
    """A categorical first column (integer codes as float, as the tree view gives it) and a
    model stopped early on a validation fold."""
    rng = np.random.default_rng(9)
    n = 1200
    codes = rng.integers(0, 12, n).astype(float)
    other = rng.normal(size=(n, 4))
    effect = np.array([2.0, -1, 0.5, 3, -2, 0, 1, -3, 2.5, -0.5, 1.5, -1.5])[codes.astype(int)]
    y = np.where(effect + other[:, 0] + rng.normal(0, 1, n) > 0, "yes", "no")
    X = with_nan(np.column_stack([codes, other]), seed=10, share=0.05)
    model = boosted("lightgbm", "classification", X[:900], y[:900], rounds=400,
                    val=(X[900:], y[900:]), categorical=1, learning_rate=0.3)  # fmt: skip
    assert 0 < model.best_iteration_ < 400
    assert "num_cat=1" in model.booster_.model_to_string()  # categorical splits were made
    unseen = X[900:].copy()
    unseen[:5, 0] = 40.0  # a code never seen in training
    assert_same(model, X[:900], unseen)


def test_an_early_stopped_xgboost_predicts_with_its_best_rounds() -> None:
    """XGBoost stopped early predicts with rounds up to its best iteration, as the wrapper."""
    X, y = data("breast_cancer")
    X = with_nan(X, seed=11)
    model = boosted("xgboost", "classification", X[:400], y[:400], rounds=400,
                    val=(X[400:], y[400:]), learning_rate=0.3)  # fmt: skip
    inner = model.estimator_
    assert inner.best_iteration + 1 < inner.get_booster().num_boosted_rounds()
    assert_same(model, X[:400], X[400:])
    X, y = data("diabetes")
    regressor = boosted("xgboost", "regression", X[:300], y[:300], rounds=400,
                        val=(X[300:], y[300:]), learning_rate=0.3)  # fmt: skip
    assert_same(regressor, X[:300], with_nan(X[300:], seed=12))


def test_a_plain_xgboost_classifier() -> None:
    """XGBClassifier used directly (labels 0..k-1) gives the same labels and probabilities."""
    import xgboost as xgb

    X, y = data("iris")
    model = xgb.XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1).fit(X, y)
    assert_same(model, X, with_nan(new_rows(X, seed=13), seed=14))


@pytest.mark.parametrize(("dataset", "kind"), [("breast_cancer", "str"), ("breast_cancer",
                                               "bool"), ("iris", "str"), ("wine", "int")])
def test_logistic_regression_binary_and_multinomial(dataset: str, kind: str) -> None:
    """Logistic regression: expit for two classes, softmax for more, labels of any type."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, y = data(dataset)
    X = StandardScaler().fit_transform(X)
    model = LogisticRegression(C=0.5, max_iter=1000).fit(X, labels(y, kind))
    assert_same(model, X, new_rows(X, seed=15))


def test_ridge_and_least_squares() -> None:
    """Ridge (as the Linear learner makes it) and LinearRegression: X @ coef + intercept."""
    from sklearn.linear_model import LinearRegression

    from loopml.train._learners import Linear

    X, y = data("diabetes")
    ridge = Linear().make({"alpha": 0.3}, "regression", seed=0, threads=1).fit(X, y)
    assert_same(ridge, X, new_rows(X, seed=16))
    assert_same(LinearRegression().fit(X, y), X, new_rows(X, seed=17))


def oof_proba(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold naive Bayes probabilities (overconfident) and the class positions."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.naive_bayes import GaussianNB

    X, y = data(dataset)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return cross_val_predict(GaussianNB(), X, y, cv=folds, method="predict_proba"), y


@pytest.mark.parametrize(("method", "dataset"), [("isotonic", "breast_cancer"),
                                                 ("sigmoid", "breast_cancer"),
                                                 ("temperature", "breast_cancer"),
                                                 ("temperature", "wine")])
def test_a_compiled_calibrator_transforms_as_the_calibrator(method: str, dataset: str) -> None:
    """Each calibration method gives Calibrator.transform's probabilities, also beyond the
    range it was fitted on and after a round trip."""
    proba, truth = oof_proba(dataset)
    half = len(truth) // 2
    calibrator = Calibrator(method).fit(proba[:half], truth[:half])
    k = proba.shape[1]
    grid = np.linspace(0, 1, 201)
    extreme = np.column_stack([1 - grid, grid]) if k == 2 else (
        np.random.default_rng(18).dirichlet(np.ones(k), 200))
    compiled = compile_calibrator(calibrator)
    for form in (compiled, round_trip(compiled)):
        for p in (proba, proba[half:], proba[:1], extreme):
            np.testing.assert_allclose(form.transform(p), calibrator.transform(p), rtol=0,
                                       atol=1e-12)  # fmt: skip


def test_an_unsupported_estimator_is_not_compilable() -> None:
    """HistGradientBoosting, nearest neighbours and an unfitted forest raise NotCompilable
    naming the estimator."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier

    X, y = data("iris")
    for model in (HistGradientBoostingClassifier(max_iter=5).fit(X, y),
                  KNeighborsClassifier().fit(X, y), RandomForestClassifier()):
        with pytest.raises(NotCompilable, match=type(model).__name__):
            compile_estimator(model)
    with pytest.raises(NotCompilable, match="not fitted"):
        compile_calibrator(Calibrator("isotonic"))


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_lightgbm_one_row_at_a_time_gives_the_batch_numbers(kind: str) -> None:
    """A row scored alone (the booster's single-row predictor) gives the batch numbers,
    missing values included."""
    from lightgbm import LGBMClassifier, LGBMRegressor

    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 6))
    X[rng.random(X.shape) < 0.15] = np.nan
    y = {"binary": np.nan_to_num(X[:, 0]) > 0, "multiclass": rng.integers(0, 3, 600),
         "regression": np.nan_to_num(X[:, 1]) * 2}[kind]
    est = (LGBMRegressor if kind == "regression" else LGBMClassifier)(
        n_estimators=25, verbose=-1).fit(X, y)
    model = compile_estimator(est)
    score = model.predict if kind == "regression" else model.predict_proba
    batch = score(X[:80])
    ones = np.concatenate([score(X[i:i + 1]) for i in range(80)])
    np.testing.assert_array_equal(ones, batch)
    assert ones.shape == ((80,) if kind == "regression" else (80, est.n_classes_))


def test_lightgbm_single_rows_from_several_threads_give_the_batch_numbers() -> None:
    """The server scores requests on a pool of threads: rows scored one at a time from four
    threads at once through the one prepared single-row predictor are the batch numbers."""
    import threading

    from lightgbm import LGBMClassifier

    rng = np.random.default_rng(4)
    X = rng.normal(size=(2000, 8))
    y = rng.integers(0, 3, 2000) + (X[:, 0] > 0)
    model = compile_estimator(LGBMClassifier(n_estimators=60, verbose=-1, n_jobs=1).fit(X, y))
    batch = model.predict_proba(X)
    got = np.full_like(batch, np.nan)

    def score(first: int) -> None:
        for i in range(first, len(X), 4):
            got[i] = model.predict_proba(X[i:i + 1])[0]

    threads = [threading.Thread(target=score, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(got, batch)
