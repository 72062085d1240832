"""loopml.fit: the notebook API on real data (breast cancer, palmerpenguins, diabetes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from palmerpenguins import load_penguins
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import NotFittedError

import loopml
from loopml.core.errors import (
    ConfigError,
    EmptyDataError,
    IntegrityError,
    LoopmlError,
    SchemaError,
    TargetError,
)
from loopml.pipeline._estimator import LoopmlClassifier, LoopmlRegressor

FAST = {"time_budget": 3, "learners": ["lightgbm", "linear"]}


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    return load_breast_cancer(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def cancer_model(cancer):
    X, y = cancer
    return loopml.fit(X, y, **FAST)


@pytest.fixture(scope="module")
def penguins() -> pl.DataFrame:
    return pl.from_pandas(load_penguins())


def test_binary_classifier_from_pandas(cancer, cancer_model) -> None:
    """A pandas X and y give a fitted classifier with sklearn's fit-time attributes."""
    X, y = cancer
    model = cancer_model
    assert isinstance(model, LoopmlClassifier) and is_classifier(model)
    assert model.classes_.tolist() == [0, 1]
    assert model.positive_label_ == 1
    assert model.feature_names_in_.tolist() == list(X.columns)
    assert model.n_features_in_ == 30
    proba = model.predict_proba(X.head(40))
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(X).tolist()) <= {0, 1}
    assert model.score(X, y) > 0.9
    assert "classification" in model.task_reason_ and "auto" in model.task_reason_


def test_predictions_take_the_compiled_form_with_the_models_answers(cancer, cancer_model,
                                                                     tmp_path: Path) -> None:
    """predict and predict_proba use the compiled form (as serving does: no scikit-learn
    per-call overhead) when it gave the model's answers on the test rows; they agree with
    the scikit-learn model on every row, and a saved model loads it back."""
    X, _ = cancer
    model = cancer_model
    assert model.compiled_ is not None, model.serving_form_
    assert model.serving_form_["form"] == "compiled"
    assert model.serving_form_["rows_checked"] == model.split_sizes_["test"]
    features = model._features(X)
    np.testing.assert_allclose(model.predict_proba(X), model.model_.predict_proba(features),
                               rtol=0, atol=1e-6)
    assert model.predict(X).tolist() == np.asarray(model.model_.predict(features)).tolist()
    assert model.predict(X).dtype == model.classes_.dtype
    loaded = loopml.load(model.save(tmp_path / "model"))
    assert loaded.compiled_ is not None and loaded.serving_form_ == model.serving_form_
    # a batch goes to the form that scored the test rows faster; a few rows, the compiled one
    import copy

    assert set(model.serving_form_["batch_ms"]) == {"compiled", "scikit-learn"}
    slow = copy.copy(model)
    slow.serving_form_ = {**model.serving_form_,
                          "batch_ms": {"compiled": 2.0, "scikit-learn": 1.0}}
    assert slow._scorer(1000) is slow.model_ and slow._scorer(1) is slow.compiled_


def test_test_split_scored_once_and_held_out(cancer_model) -> None:
    """The evaluation is on the held-out test rows, with the search's metric."""
    model = cancer_model
    sizes = model.split_sizes_
    assert sum(sizes.values()) == 569
    assert model.evaluation.rows == sizes["test"]
    assert model.evaluation.metric == model.leaderboard.metric == "roc_auc"
    assert model.evaluation.score > 0.9


def test_multiclass_from_polars_frame_and_target(penguins) -> None:
    """One Polars frame plus target= gives a three-class classifier on the other columns."""
    model = loopml.fit(penguins, target="species", **FAST)
    assert model.classes_.tolist() == ["Adelie", "Chinstrap", "Gentoo"]
    assert "species" not in model.feature_names_in_.tolist()
    assert model.n_features_in_ == penguins.width - 1
    proba = model.predict_proba(penguins.head(10))
    assert proba.shape == (10, 3)
    assert model.predict(penguins).shape == (penguins.height,)
    assert (model.predict(penguins) == penguins["species"].to_numpy()).mean() > 0.9


def test_regression_of_body_mass_leaves_out_missing_targets(penguins) -> None:
    """A numeric target with many values is a regression; rows without it are left out."""
    model = loopml.fit(penguins, target="body_mass_g", **FAST)
    assert isinstance(model, LoopmlRegressor) and is_regressor(model)
    assert not hasattr(model, "classes_")
    assert model.rows_dropped_ == 2
    assert "regression" in model.task_reason_
    pred = model.predict(penguins)
    assert pred.shape == (penguins.height,) and pred.dtype.kind == "f"
    assert model.serving_form_["form"] == "compiled", model.serving_form_
    np.testing.assert_allclose(pred, model.model_.predict(model._features(penguins)),
                               rtol=0, atol=1e-6)
    assert model.evaluation.metric == "rmse"
    assert model.evaluation.score < penguins["body_mass_g"].std()


def test_save_and_load_give_identical_predictions(cancer, cancer_model, tmp_path: Path) -> None:
    """A saved model loads as the same estimator, predicting exactly the same."""
    X, _ = cancer
    folder = cancer_model.save(tmp_path / "model")
    loaded = loopml.load(folder)
    assert type(loaded) is LoopmlClassifier
    np.testing.assert_array_equal(loaded.predict_proba(X), cancer_model.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, cancer_model.classes_)
    assert loaded.leaderboard == cancer_model.leaderboard
    assert loaded.evaluation == cancer_model.evaluation
    assert loaded.get_params() == cancer_model.get_params()
    assert "leaderboard" in loaded._repr_html_().lower()


def test_clone_and_cross_val_score() -> None:
    """scikit-learn can clone the estimator and cross-validate it."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    estimator = LoopmlClassifier(time_budget=2, training={"learners": ["linear"]})
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params()
    scores = cross_val_score(estimator, X, y, cv=2)
    assert scores.shape == (2,) and (scores > 0.85).all()


def test_regressor_in_a_pipeline_on_numpy_arrays() -> None:
    """Inside a scikit-learn Pipeline on plain arrays; no feature names are claimed."""
    X, y = load_diabetes(return_X_y=True)
    pipe = make_pipeline(
        StandardScaler(), LoopmlRegressor(time_budget=2, training={"learners": ["linear"]})
    )
    pipe.fit(X[:300], y[:300])
    model = pipe[-1]
    assert model.n_features_in_ == 10 and not hasattr(model, "feature_names_in_")
    assert pipe.predict(X[300:]).shape == (X.shape[0] - 300,)
    assert pipe.score(X[300:], y[300:]) > 0.3
    with pytest.raises(SchemaError, match="10"):
        model.predict(X[:5, :4])


def test_notebook_views_show_the_leaderboard(cancer_model) -> None:
    """Jupyter gets HTML tables of the summary and leaderboard; repr is the same in text."""
    model = cancer_model
    html = model._repr_html_()
    assert html.count("<table") == 2 and "Leaderboard" in html
    best = model.leaderboard.best
    assert (best.name or f"{best.learner} #{best.trial}") in html
    assert model._repr_mimebundle_()["text/html"] == html
    text = repr(model)
    assert "test roc_auc" in text and "leaderboard" in text
    assert "LoopmlClassifier(" in repr(clone(model))  # unfitted: scikit-learn's own repr


def test_leaderboard_frame_marks_the_chosen_model(cancer_model) -> None:
    """to_frame has one row per candidate and exactly one chosen; pandas on request."""
    board = cancer_model.leaderboard
    frame = board.to_frame()
    assert frame.height == len(board.candidates)
    assert frame["chosen"].sum() == 1
    assert frame.filter(pl.col("chosen"))["learner"].item() == board.best.learner
    assert isinstance(board.to_frame("pandas"), pd.DataFrame)


# ---- bad input -------------------------------------------------------------------------------


def _frame() -> pl.DataFrame:
    return pl.DataFrame({"x": list(range(30)), "label": ["a", "b", "c"] * 10})


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: loopml.fit(_frame()), TargetError, "No target"),
        (lambda: loopml.fit(_frame(), target="lable"), TargetError, "'label'"),
        (lambda: loopml.fit(_frame(), [1] * 30, target="label"), TargetError, "Both"),
        (lambda: loopml.fit(_frame().select("x"), [1, 2]), SchemaError, "30 rows"),
        (lambda: loopml.fit(np.arange(10), np.arange(10)), SchemaError, "2-D"),
        (lambda: loopml.fit(_frame().select("label"), target="label"), SchemaError, "no feature"),
        (lambda: loopml.fit(_frame().head(0), target="label"), EmptyDataError, "empty"),
        (lambda: loopml.fit(_frame(), target="label", task="ranking"), ConfigError, "task"),
        (lambda: loopml.fit(_frame(), target="label", task="regression"), TargetError,
         "numeric"),
        (lambda: loopml.fit(_frame().with_columns(label=pl.lit(None, pl.String)),
                            target="label"), TargetError, "missing in all 30"),
        (lambda: loopml.fit(_frame().with_columns(label=pl.lit("a")), target="label"),
         TargetError, "two classes"),
        (lambda: loopml.fit(_frame(), target="label", leaners=["linear"]), ConfigError,
         "learners"),
        (lambda: loopml.fit(_frame(), target="label", time_budget=0), ConfigError,
         "time_budget"),
        (lambda: loopml.fit(_frame(), target="label", cv_folds=1), ConfigError, "cv_folds"),
        (lambda: loopml.fit({"x": [1]}, [1]), SchemaError, "table"),
    ],
)
def test_bad_input_raises_a_loopml_error(call, error, words) -> None:
    """Each mistake gets its own LoopmlError saying what was wrong, with a hint."""
    with pytest.raises(error, match=words) as info:
        call()
    assert isinstance(info.value, LoopmlError)


def test_predict_needs_the_fitted_columns(cancer, cancer_model) -> None:
    """Missing feature columns are named; an unfitted model says it is not fitted."""
    X, _ = cancer
    with pytest.raises(SchemaError, match="mean radius"):
        cancer_model.predict(X.drop(columns=["mean radius"]))
    with pytest.raises(NotFittedError):
        LoopmlClassifier().predict(X)


def test_load_refuses_what_is_not_a_saved_model(tmp_path: Path) -> None:
    """A missing folder, or one without a bundle, is an IntegrityError."""
    with pytest.raises(IntegrityError, match="not a folder"):
        loopml.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IntegrityError, match="lacks"):
        loopml.load(tmp_path / "empty")


def test_import_loopml_stays_light() -> None:
    """loopml.fit and loopml.load are there without importing scikit-learn or the pipeline."""
    code = ("import sys, loopml; heavy = 'sklearn' in sys.modules, 'loopml.pipeline' in "
            "sys.modules; print(*heavy, callable(loopml.fit), callable(loopml.load))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True", "True"]
