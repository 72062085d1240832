"""The compiled serving form of a whole model: an ensemble of fitted feature views and
estimators (bags of fold models among them), its calibrator and threshold, checked against
the scikit-learn model, saved as JSON and arrays and loaded without unpickling anything."""

from __future__ import annotations

import json
import os

import numpy as np
import polars as pl
import pytest

from loopml.core.errors import NotCompilable
from loopml.features import build_features, tree_features
from loopml.train import CompiledModel, compile_model, serving_form
from tests.unit.serve.serve_models import CONTRACT, FEATURES, flights

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _member(estimator, data: pl.DataFrame, target: str, *, view: str):
    from sklearn.pipeline import Pipeline

    task = "regression" if target == "arr_delay" else "classification"
    make = tree_features if view == "tree" else build_features
    features = make(CONTRACT, columns=list(FEATURES), task=task)
    return Pipeline([("features", features), ("model", estimator)]).fit(
        data.select(FEATURES), data[target].to_numpy())


def _classifier(data: pl.DataFrame, *, calibrated: bool):
    """What the search returns: weighted members (one a bag of fold models), calibration and
    a decision threshold."""
    from lightgbm import LGBMClassifier
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.linear_model import LogisticRegression

    from loopml.train._calibrate import Calibrator
    from loopml.train._final import FoldBag, SearchedModel

    classes = sorted(set(data["late"].to_list()))
    folds = [data[i::3] for i in range(3)]
    bag = FoldBag([_member(ExtraTreesClassifier(n_estimators=30, random_state=i), f, "late",
                           view="tree") for i, f in enumerate(folds)],
                  task="classification", classes=classes)
    lgbm = _member(LGBMClassifier(n_estimators=40, verbose=-1, random_state=0), data, "late",
                   view="tree")
    linear = _member(LogisticRegression(max_iter=500), data, "late", view="dense")
    members = [(bag, 0.5), (lgbm, 0.3), (linear, 0.2)]
    calibrator = None
    if calibrated:
        model = SearchedModel(members, task="classification", classes=classes,
                              columns=list(FEATURES))
        proba = model.predict_proba(data.select(FEATURES))
        truth = np.asarray([classes.index(v) for v in data["late"].to_list()])
        calibrator = Calibrator("isotonic").fit(proba, truth)
    return SearchedModel(members, task="classification", classes=classes,
                         columns=list(FEATURES), calibrator=calibrator, threshold=0.35,
                         positive=0)


@pytest.mark.parametrize("calibrated", [False, True])
def test_an_ensemble_compiles_to_the_same_predictions(tmp_path, calibrated):
    """Probabilities within 1e-6 and the same labels (the threshold included) on new rows,
    one row and rows with missing values, before and after a save and load."""
    data = flights(600, seed=1)
    model = _classifier(data, calibrated=calibrated)
    new = flights(300, seed=2).select(FEATURES)
    gappy = new.with_columns(pl.when(pl.int_range(0, 300) % 4 == 0).then(None)
                             .otherwise(pl.col(c)).alias(c) for c in FEATURES)
    compiled = compile_model(model)
    loaded = CompiledModel.load(compiled.save(tmp_path / "compiled"))
    assert set(os.listdir(tmp_path / "compiled")) == {"model.json", "arrays.npz"}
    for form in (compiled, loaded):
        for rows in (new, new.head(1), gappy):
            np.testing.assert_allclose(form.predict_proba(rows), model.predict_proba(rows),
                                       rtol=0, atol=1e-6)
            assert list(form.predict(rows)) == list(model.predict(rows))
    assert list(loaded.classes_) == list(model.classes_)


def test_a_regression_ensemble_compiles(tmp_path):
    from lightgbm import LGBMRegressor
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import Ridge

    from loopml.train._final import FoldBag, SearchedModel

    data = flights(500, seed=3)
    bag = FoldBag([_member(RandomForestRegressor(n_estimators=20, random_state=i), data[i::2],
                           "arr_delay", view="tree") for i in range(2)],
                  task="regression", classes=None)
    members = [(bag, 0.4), (_member(LGBMRegressor(n_estimators=30, verbose=-1), data,
                                    "arr_delay", view="tree"), 0.4),
               (_member(Ridge(), data, "arr_delay", view="dense"), 0.2)]
    model = SearchedModel(members, task="regression", classes=None, columns=list(FEATURES))
    rows = flights(200, seed=4).select(FEATURES)
    loaded = CompiledModel.load(compile_model(model).save(tmp_path / "c"))
    np.testing.assert_allclose(loaded.predict(rows), model.predict(rows), rtol=0, atol=1e-6)


def test_serving_form_records_why(tmp_path):
    """A model that matches is saved with its record; one with a part that has no compiled
    form, or whose compiled form disagrees, is served as the pickle and the record says why."""
    from sklearn.neighbors import KNeighborsClassifier

    from loopml.train import _fastpath

    data = flights(400, seed=5)
    rows = flights(100, seed=6).select(FEATURES)
    model = _classifier(data, calibrated=False)
    record = serving_form(model, rows, tmp_path / "ok")
    assert record["form"] == "compiled" and record["rows_checked"] == 100
    assert record["max_abs_diff"] <= 1e-6 and "matches" in record["reason"]
    assert json.loads((tmp_path / "ok" / "model.json").read_text())["root"]["kind"] == "ensemble"

    knn = _member(KNeighborsClassifier(), data, "late", view="dense")
    record = serving_form(knn, rows, tmp_path / "knn")
    assert record["form"] == "pickle" and "KNeighborsClassifier" in record["reason"]
    assert not (tmp_path / "knn").exists()
    with pytest.raises(NotCompilable):
        compile_model(knn)

    real = _fastpath.parity
    try:  # a compiled form that drifts from the model is refused
        _fastpath.parity = lambda *a: 0.01
        record = serving_form(model, rows, tmp_path / "off")
    finally:
        _fastpath.parity = real
    assert record["form"] == "pickle" and "differs" in record["reason"]
    assert not (tmp_path / "off").exists()
    try:  # labels that differ: no number to record, and JSON-safe
        _fastpath.parity = lambda *a: float("inf")
        record = serving_form(model, rows, tmp_path / "labels")
    finally:
        _fastpath.parity = real
    assert record["form"] == "pickle" and record["max_abs_diff"] is None
    assert "labels" in record["reason"] and json.loads(json.dumps(record, allow_nan=False))


def test_loading_refuses_pickled_arrays(tmp_path):
    """The arrays file is read with allow_pickle=False: an object array in it is an error,
    not code run."""
    data = flights(300, seed=7)
    folder = compile_model(_classifier(data, calibrated=False)).save(tmp_path / "c")
    with np.load(folder / "arrays.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    first = sorted(arrays)[0]
    arrays[first] = np.array([object()], dtype=object)
    np.savez(folder / "arrays.npz", **arrays)
    with pytest.raises(ValueError, match="allow_pickle"):
        CompiledModel.load(folder)
