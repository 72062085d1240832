"""The portfolio search: out-of-fold ensembles, budget, determinism, folds, serving."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from loopml.core.config import PreferConfig, TrainingConfig
from loopml.core.records import ModelBundle, Reference
from loopml.features import build_features
from loopml.quality import infer_contract
from loopml.serve import predict_frame
from loopml.train import split, train
from loopml.train._cv import make_folds
from tests.conftest import sklearn_frame


def inputs(frame: pl.DataFrame, target: str) -> dict:
    contract = infer_contract(frame, source="s", target=target)
    return {"contract": contract, "columns": [c for c in contract.names if c != target]}


def penguins() -> pl.DataFrame:
    import importlib.util

    spec = importlib.util.find_spec("palmerpenguins")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "penguins.csv"
    return pl.read_csv(path, null_values=["NA"]).drop("year")


@pytest.fixture(scope="module")
def cancer() -> tuple:
    """One 8-second search on breast cancer, shared by the tests that read its result."""
    frame = sklearn_frame("breast_cancer")
    s = split(frame, target="target", task="classification")
    config = TrainingConfig(time_budget_s=8)
    return s, train(s, **inputs(frame, "target"), task="classification", target="target",
                    config=config)


def test_ensemble_is_at_least_the_best_single_out_of_fold(cancer: tuple) -> None:
    """The chosen model's out-of-fold score is never below the best single candidate's."""
    _, r = cancer
    lb = r.leaderboard
    singles = [c for c in lb.candidates if c.status == "ok" and c.learner != "ensemble"]
    assert len(singles) >= 3
    assert lb.best.cv_score >= max(c.cv_score for c in singles)
    if lb.final == "ensemble":
        assert lb.best.learner == "ensemble" and len(lb.ensemble) >= 2
        assert abs(sum(w for _, w in lb.ensemble) - 1) < 1e-6
        assert abs(sum(c.ensemble_weight for c in singles) - 1) < 1e-3
        assert lb.reason.startswith("ensemble of")


def test_leaderboard_fields_are_filled(cancer: tuple) -> None:
    """Every completed candidate has a name, origin, score, spread, fit and predict time."""
    _, r = cancer
    lb = r.leaderboard
    assert lb.metric == "roc_auc" and lb.budget_s == 8 and "fold stratified" in lb.cv
    assert lb.seconds > 0  # keeping to the budget is measured by bench/automl.py
    assert lb.final_fit in ("refit", "bagged") and lb.reason
    names = [c.name for c in lb.candidates]
    assert len(names) == len(set(names))
    for c in lb.candidates:
        assert c.name and c.origin in ("portfolio", "search", "ensemble")
        if c.status == "ok":
            assert 0.5 < c.cv_score <= 1 and c.cv_std is not None
            assert c.fit_time_s > 0 and c.predict_ms_per_1000 > 0
    assert {"lightgbm", "linear", "extra_trees"} <= {c.learner for c in lb.candidates}


def test_model_pickles_and_serves(cancer: tuple) -> None:
    """The returned model pickles, and predict_frame scores it as the model itself does."""
    s, r = cancer
    model = pickle.loads(pickle.dumps(r.model))
    X = s.test.select(r.feature_columns)
    assert np.array_equal(model.predict_proba(X), r.model.predict_proba(X))
    bundle = ModelBundle(
        model=model, contract=inputs(s.train, "target")["contract"].select(r.feature_columns),
        task="classification", target="target", feature_columns=r.feature_columns,
        classes=r.classes, positive_label=r.positive_label, reference=Reference(features=()))
    scored = predict_frame(bundle, X)
    pos = list(r.classes).index(r.positive_label)
    assert np.allclose(scored["_score"].to_numpy(), r.model.predict_proba(X)[:, pos])
    assert set(scored["_prediction"].to_list()) <= set(r.classes)


def test_deterministic_mode_gives_identical_predictions() -> None:
    """Two deterministic runs with the same seed and data predict exactly the same."""
    frame = sklearn_frame("wine")
    s = split(frame, target="target", task="classification")
    config = TrainingConfig(time_budget_s=3, deterministic=True, max_trials=5)
    runs = [train(s, **inputs(frame, "target"), task="classification", target="target",
                  config=config) for _ in range(2)]
    X = s.test.drop("target")
    assert np.array_equal(runs[0].model.predict_proba(X), runs[1].model.predict_proba(X))
    assert [c.cv_score for c in runs[0].leaderboard.candidates] == [
        c.cv_score for c in runs[1].leaderboard.candidates]
    assert runs[0].leaderboard.deterministic and runs[0].leaderboard.final_fit == "refit"
    assert len([c for c in runs[0].leaderboard.candidates if c.learner != "ensemble"]) == 5


def test_prefer_fastest_within_picks_a_cheaper_near_best_model() -> None:
    """With a wide tolerance the winner is the cheapest candidate near the best."""
    frame = sklearn_frame("diabetes")
    s = split(frame, target="target", task="regression")
    r = train(s, **inputs(frame, "target"), task="regression", target="target",
              config=TrainingConfig(time_budget_s=4, prefer=PreferConfig(fastest_within=50.0)))
    lb = r.leaderboard
    ok = [c for c in lb.candidates if c.status == "ok"]
    assert lb.best.fit_time_s == min(c.fit_time_s for c in ok)
    assert lb.metric == "rmse" and np.isfinite(r.model.predict(s.test)).all()


def test_prefer_fastest_to_predict_weighs_what_scoring_pays() -> None:
    """``by: predict`` ranks by the cost of predicting, not of fitting: nearest neighbours
    fit for nothing and predict slowly, a forest the other way round (deterministic mode
    ranks by each learner's relative costs), and with measured times the winner is the
    candidate whose measured predict time is the least."""
    frame = sklearn_frame("diabetes")
    s = split(frame, target="target", task="regression")
    chosen = {}
    for by in ("fit", "predict"):
        config = TrainingConfig(time_budget_s=10, deterministic=True, max_trials=2,
                                learners=["knn", "random_forest"], ensemble=False,
                                prefer=PreferConfig(fastest_within=1e9, by=by))
        lb = train(s, **inputs(frame, "target"), task="regression", target="target",
                   config=config).leaderboard
        chosen[by] = lb.best.learner
        top = next(c for c in lb.candidates if c.status == "ok")  # the best by its score
        assert ("fastest" in lb.reason) == (lb.best.name != top.name), lb.reason
    assert chosen == {"fit": "knn", "predict": "random_forest"}

    r = train(s, **inputs(frame, "target"), task="regression", target="target",
              config=TrainingConfig(time_budget_s=4, prefer=PreferConfig(fastest_within=1e9,
                                                                         by="predict")))
    ok = [c for c in r.leaderboard.candidates if c.status == "ok"
          and c.predict_ms_per_1000 is not None]
    assert r.leaderboard.best.predict_ms_per_1000 == min(c.predict_ms_per_1000 for c in ok)


def test_grouped_folds_keep_each_group_in_one_fold() -> None:
    """With a group column no group is on both sides of any fold."""
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({"g": rng.integers(0, 40, 600), "y": rng.integers(0, 2, 600)})
    folds, text = make_folds(frame, frame["y"].to_numpy(), task="classification",
                             strategy="stratified", time_column=None, group_column="g",
                             k=None, seed=0)
    g = frame["g"].to_numpy()
    assert "grouped by g" in text and len(folds) == 5
    for fit, val in folds:
        assert not set(g[fit]) & set(g[val])


def test_time_folds_never_train_on_the_future() -> None:
    """Forward-chaining folds: every fitted row is older than every scored row."""
    frame = sklearn_frame("diabetes").with_row_index("t")
    s = split(frame, target="target", task="regression", time_column="t")
    train_valid = pl.concat([s.train, s.valid])
    folds, text = make_folds(train_valid, None, task="regression", strategy="time",
                             time_column="t", group_column=None, k=None, seed=0)
    t = train_valid["t"].to_numpy()
    assert "forward-chaining" in text
    for fit, val in folds:
        assert t[fit].max() < t[val].min()
    r = train(s, **inputs(frame.drop("t"), "target"), task="regression", target="target",
              config=TrainingConfig(time_budget_s=3, learners=("linear", "lightgbm")))
    assert r.leaderboard.cv.startswith("5-fold forward-chaining")


def test_penguins_categoricals_and_missing_values() -> None:
    """Categories reach LightGBM as native categoricals; missing numbers stay NaN in the
    tree view; the search handles the penguins' gaps end to end."""
    frame = penguins().filter(pl.col("species").is_not_null())
    kw = inputs(frame, "species")
    view = build_features(kw["contract"], columns=kw["columns"], task="classification",
                          view="tree")
    X = view.fit_transform(frame.select(kw["columns"]), frame["species"].to_numpy())
    assert np.isnan(X).any()  # bill length and others are missing for two penguins
    assert [n for n, *_ in view.transformers][0] == "category"
    s = split(frame, target="species", task="classification")
    r = train(s, **kw, task="classification", target="species",
              config=TrainingConfig(time_budget_s=5, metric="log_loss"))
    assert r.leaderboard.metric == "log_loss" and r.leaderboard.best.cv_score < 0.3
    assert not [c.message for c in r.leaderboard.candidates if c.status == "failed"]
    proba = r.model.predict_proba(s.test)
    assert proba.shape == (s.test.height, 3) and np.allclose(proba.sum(axis=1), 1)


def test_useless_columns_are_dropped_with_a_reason() -> None:
    """A constant and a duplicated column leave the features, recorded with their reasons."""
    frame = sklearn_frame("breast_cancer").with_columns(
        pl.lit(1.0).alias("constant"), pl.col("mean radius").alias("radius copy"))
    s = split(frame, target="target", task="classification")
    r = train(s, **inputs(frame, "target"), task="classification", target="target",
              config=TrainingConfig(time_budget_s=4, learners=("linear", "lightgbm")))
    dropped = dict(r.leaderboard.dropped_features)
    assert "constant" in dropped and {"mean radius", "radius copy"} & set(dropped)
    assert "constant" not in r.feature_columns
    assert r.model.predict_proba(s.test.select(r.feature_columns)).shape[0] == s.test.height


def test_imbalanced_binary_target_with_calibration_and_threshold() -> None:
    """A rare positive class: the search still ranks well, and a threshold chosen for F1
    is a probability the model's predict uses."""
    frame = sklearn_frame("breast_cancer")
    rare = pl.concat([frame.filter(pl.col("target") == 1),
                      frame.filter(pl.col("target") == 0).head(30)])
    s = split(rare, target="target", task="classification")
    r = train(s, **inputs(rare, "target"), task="classification", target="target",
              positive_label=0, config=TrainingConfig(time_budget_s=5, metric="f1"))
    lb = r.leaderboard
    assert lb.best.cv_score > 0.5
    assert lb.threshold is None or 0 < lb.threshold < 1
    assert lb.calibration is None or isinstance(lb.calibration, str)
    assert set(r.model.predict(s.test).tolist()) <= {0, 1}


def test_clock_holds_a_reserve_and_ignores_time_when_deterministic() -> None:
    """The reserve for the final fit is capped at a share of the budget; a deterministic
    clock never says stop."""
    from loopml.train._budget import MAX_RESERVE_SHARE, MIN_RESERVE_S, Clock

    clock = Clock(10.0)
    assert clock.reserve_for(100.0) == MIN_RESERVE_S + MAX_RESERVE_SHARE * 10.0
    assert clock.out(reserve=10.0) and not clock.out(reserve=0.0)
    assert not Clock(0.001, deterministic=True).out(reserve=5.0)


def test_a_search_begins_with_the_configurations_it_is_warmed_with(cancer: tuple) -> None:
    """``warm_specs`` of a search are its ensemble's members (or its choice) without the
    rounds their fits chose; a search warmed with them tries them first, as ``champion``
    candidates, and does not try the same configuration again from its portfolio."""
    from loopml.train import warm_specs

    s, first = cancer
    warm = warm_specs(first.leaderboard)
    members = [n for n, w in first.leaderboard.ensemble if w > 0] or [first.leaderboard.best.name]
    assert warm and {w.learner for w in warm} <= {n.split("/")[0] for n in members}
    assert all("n_rounds" not in w.params for w in warm)
    frame = sklearn_frame("breast_cancer")
    config = TrainingConfig(time_budget_s=10, deterministic=True, max_trials=len(warm) + 2)
    board = train(s, **inputs(frame, "target"), task="classification", target="target",
                  config=config, warm=warm).leaderboard
    tried = sorted((c for c in board.candidates if c.origin != "ensemble"),
                   key=lambda c: c.trial)  # in the order tried
    assert [(c.learner, c.origin) for c in tried[:len(warm)]] == [
        (w.learner, "champion") for w in warm]
    seen = [(c.learner, {k: v for k, v in c.params.items() if k != "n_rounds"})
            for c in tried]
    assert all(seen.count(x) == 1 for x in seen)  # no configuration tried twice
