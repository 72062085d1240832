"""check_window: drift, realised and estimated performance, concept drift and the status of
one window of the log; history_rows: what the monitoring table keeps of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from loopml.core.config import MonitoringConfig
from loopml.core.contract import ColumnSpec, Contract
from loopml.core.records import Evaluation, ModelBundle, Reference, WindowReport
from loopml.evaluate import evaluate
from loopml.monitor import build_calibration, build_reference, check_window, history_rows

START = datetime(2024, 3, 4, tzinfo=UTC)
CONFIG = MonitoringConfig(min_rows=100)
POSITIVE = "malignant"


@pytest.fixture(scope="module")
def setup(cancer):
    """A logistic regression on a third of the tumours; its reference, calibration and
    evaluation from another third; the last third is live traffic."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = cancer.with_columns(
        label=pl.when(pl.col("target") == 1).then(pl.lit("benign")).otherwise(pl.lit(POSITIVE))
    ).sample(fraction=1.0, shuffle=True, seed=5)
    features = [c for c in cancer.columns if c != "target"]
    n = frame.height
    train, held, live = frame[: n // 3], frame[n // 3 : 2 * n // 3], frame[2 * n // 3 :]
    model = make_pipeline(ColumnTransformer([("num", StandardScaler(), features)]),
                          LogisticRegression(C=0.05, max_iter=2000))  # fmt: skip
    model.fit(train.select(features), train["label"].to_numpy())
    contract = Contract(source="cancer", columns=tuple(ColumnSpec(name=f, type="float")
                                                      for f in features))  # fmt: skip
    scores = model.predict_proba(held.select(features))[:, list(model.classes_).index(POSITIVE)]
    reference = replace(
        build_reference(held, contract, columns=features[:6], predictions=pl.Series(scores)),
        calibration=build_calibration(scores, held["label"].to_list(), POSITIVE),
    )
    evaluation = evaluate(model, held.select(*features, "label"), task="classification",
                          target="label", metric="roc_auc", positive_label=POSITIVE)  # fmt: skip
    bundle = ModelBundle(
        model=model, contract=contract, task="classification", target="label",
        feature_columns=tuple(features), classes=tuple(model.classes_), positive_label=POSITIVE,
        reference=reference, evaluation=evaluation,
    )  # fmt: skip
    return bundle, live


def log_of(bundle: ModelBundle, frame: pl.DataFrame, *, labels=None, hours: int = 7 * 24):
    """``frame`` as the log holds it, predictions spread evenly over ``hours``, with labels."""
    features = list(bundle.feature_columns)
    proba = bundle.model.predict_proba(frame.select(features))
    classes = np.asarray(bundle.classes, dtype=object)
    step = hours * 3600 / max(frame.height, 1)
    return frame.select(features).with_columns(
        _request_id=pl.Series([f"r{i}" for i in range(frame.height)]),
        _record=pl.lit(0, dtype=pl.Int64),
        _predicted_at=pl.Series([START + timedelta(seconds=i * step) for i in range(frame.height)]),
        _prediction=pl.Series(classes[proba.argmax(1)].tolist()),
        _score=pl.Series(proba[:, list(classes).index(POSITIVE)]),
        _label=pl.Series(labels if labels is not None else frame["label"].to_list(),
                         dtype=pl.String),
    )  # fmt: skip


def test_an_unshifted_window_is_ok_with_the_estimate_near_the_truth(setup):
    """Live tumours like the training ones: no decay, the estimate agrees, status ok."""
    bundle, live = setup
    report = check_window(bundle, log_of(bundle, live), model="cancer", version=3, config=CONFIG)

    assert isinstance(report, WindowReport) and report.drift is not None
    assert (report.model, report.version, report.rows) == ("cancer", 3, live.height)
    assert report.labelled_rows == live.height and report.metric == "roc_auc"
    assert report.reference_score == bundle.evaluation.metrics["roc_auc"]
    assert report.estimate_gap is not None and report.estimate_gap < 0.05
    assert report.estimated["accuracy"] == pytest.approx(report.realised["accuracy"], abs=0.05)
    assert not report.estimate_disagrees and report.performance_status == "ok"
    assert report.start == START and report.end > START
    assert report.status == report.drift.status


def test_drift_waits_for_min_rows_but_performance_does_not(setup):
    """Below monitoring.min_rows there is no drift report, yet realised metrics are given
    (and not judged)."""
    bundle, live = setup
    small = log_of(bundle, live.head(60))
    report = check_window(bundle, small, model="cancer", version=3, config=CONFIG)
    assert report.drift is None and report.labelled_rows == 60
    assert "roc_auc" in report.realised and report.status == "ok" and report.reasons == ()


def test_realised_decay_beyond_the_margin_is_an_alert_with_its_reason(setup):
    """Labels flipped on a third of the rows: realised AUC far below the reference."""
    bundle, live = setup
    labels = live["label"].to_list()
    other = {"benign": POSITIVE, POSITIVE: "benign"}
    labels = [other[v] if i % 3 == 0 else v for i, v in enumerate(labels)]
    report = check_window(bundle, log_of(bundle, live, labels=labels), model="cancer",
                          version=3, config=CONFIG)  # fmt: skip

    assert report.performance_status == "alert" and report.status == "alert"
    assert report.realised["roc_auc"] < report.reference_score - 0.05
    assert any(r.startswith("realised roc_auc") for r in report.reasons)
    # the scores did not change, so the estimate still looks good and now disagrees
    assert report.estimate_disagrees and report.estimate_gap > 0.05


def test_the_margin_and_tolerance_are_parameters(setup):
    """A huge margin and tolerance turn the same decayed window back to ok performance."""
    bundle, live = setup
    labels = [v if i % 3 else {"benign": POSITIVE, POSITIVE: "benign"}[v]
              for i, v in enumerate(live["label"].to_list())]  # fmt: skip
    report = check_window(bundle, log_of(bundle, live, labels=labels), model="cancer",
                          version=3, config=CONFIG, decay_margin=0.9,
                          estimate_tolerance=0.9)  # fmt: skip
    assert report.performance_status == "ok" and not report.estimate_disagrees


def test_without_labels_the_estimate_is_judged(setup):
    """No label yet, but the scores crowd around 0.5: the estimated AUC decays, an alert."""
    bundle, live = setup
    window = log_of(bundle, live, labels=[None] * live.height).with_columns(
        _score=0.5 + (pl.col("_score") - 0.5) * 0.02
    )
    flat = replace(bundle, reference=replace(bundle.reference, calibration=build_calibration(
        [0.0, 0.49, 0.51, 1.0], ["benign", "benign", POSITIVE, POSITIVE], POSITIVE)))  # fmt: skip
    report = check_window(flat, window, model="cancer", version=3, config=CONFIG,
                          metric="accuracy")  # fmt: skip
    assert report.labelled_rows == 0 and report.realised == {}
    assert report.estimate_gap is None and not report.estimate_disagrees
    assert report.estimated["accuracy"] < report.reference_score - 0.05
    assert report.performance_status == "alert"
    assert any(r.startswith("estimated accuracy") for r in report.reasons)


def test_a_change_in_the_errors_inside_the_window_is_found_and_dated(setup, cancer):
    """The second half of the window's labels are wrong: concept drift, dated inside it."""
    bundle, _ = setup
    big = pl.concat([cancer] * 8).with_columns(
        label=pl.when(pl.col("target") == 1).then(pl.lit("benign")).otherwise(pl.lit(POSITIVE))
    )
    labels = big["label"].to_list()
    half = len(labels) // 2
    labels[half:] = ["benign" if v == POSITIVE else POSITIVE if i % 2 else v
                     for i, v in enumerate(labels[half:])]  # fmt: skip
    window = log_of(bundle, big, labels=labels)
    report = check_window(bundle, window, model="cancer", version=3, config=CONFIG,
                          decay_margin=1.0)  # fmt: skip
    change = window["_predicted_at"][half]
    assert report.concept_drift_at is not None
    assert change <= report.concept_drift_at <= change + timedelta(hours=24)
    assert report.performance_status == "warn"


def test_history_rows_hold_every_number_of_the_report(setup):
    """One row per (column, statistic) with the agreed schema and the report's values."""
    bundle, live = setup
    report = check_window(bundle, log_of(bundle, live), model="cancer", version=3, config=CONFIG)
    when = datetime(2024, 4, 1, tzinfo=UTC)
    rows = history_rows(report, monitored_at=when)

    assert rows.schema == pl.Schema({
        "window_start": pl.Datetime("us", "UTC"), "window_end": pl.Datetime("us", "UTC"),
        "model_version": pl.Int64, "column": pl.String, "statistic": pl.String,
        "value": pl.Float64, "status": pl.String, "monitored_at": pl.Datetime("us", "UTC"),
    })  # fmt: skip
    assert rows["model_version"].unique().to_list() == [3]
    assert rows["window_start"].unique().to_list() == [report.start]
    assert rows["monitored_at"].unique().to_list() == [when]
    assert rows.select("column", "statistic").is_duplicated().sum() == 0

    def value(column, statistic):
        hit = rows.filter((pl.col("column") == column) & (pl.col("statistic") == statistic))
        assert hit.height == 1, (column, statistic)
        return hit["value"][0], hit["status"][0]

    for f in report.drift.features:
        assert value(f.name, "psi") == (pytest.approx(f.psi, abs=1e-6), f.status)
        for name, v in getattr(f, "stats", {}).items():
            assert value(f.name, name)[0] == pytest.approx(v, nan_ok=True)
    if getattr(report.drift, "domain_auc", None) is not None:
        assert value("_domain", "auc")[0] == pytest.approx(report.drift.domain_auc)
    assert value("_prediction", "psi")[0] == pytest.approx(report.drift.prediction.psi)
    for name, v in report.realised.items():
        assert value("_performance", f"realised_{name}")[0] == pytest.approx(v)
    for name, v in report.estimated.items():
        assert value("_performance", f"estimated_{name}")[0] == pytest.approx(v)
    assert value("_performance", "estimate_gap")[0] == pytest.approx(report.estimate_gap)
    assert value("_window", "rows") == (float(live.height), report.status)
    assert value("_window", "labelled_rows")[0] == float(live.height)


def test_history_rows_of_a_window_without_drift_or_times():
    """A bare report still gives the window's rows, with null times."""
    report = WindowReport(model="m", version=1, start=None, end=None, rows=7, drift=None)
    rows = history_rows(report)
    assert rows["column"].to_list() == ["_window", "_window"]
    assert rows["window_start"].null_count() == 2 and rows["monitored_at"].null_count() == 0


def test_regression_decay_is_relative_to_the_reference_error():
    """A regressor whose RMSE grows by more than the margin (relative) raises an alert."""
    ev = Evaluation(task="regression", metric="rmse", greater_is_better=False,
                    metrics={"rmse": 10.0, "mae": 8.0, "r2": 0.5}, rows=100)  # fmt: skip
    bundle = ModelBundle(model=None, contract=Contract(source="s", columns=()), task="regression",
                         target="y", feature_columns=(), classes=None, positive_label=None,
                         reference=Reference(features=()), evaluation=ev)  # fmt: skip
    rng = np.random.default_rng(0)
    y = rng.normal(100, 30, 400)
    for noise, status in ((9.0, "ok"), (13.0, "alert")):
        pred = y + rng.normal(0, noise, 400)
        window = pl.DataFrame({"_prediction": pred, "_label": y})
        report = check_window(bundle, window, model="m", version=1, config=CONFIG)
        assert report.estimated == {} and report.labelled_rows == 400
        expected = "alert" if report.realised["rmse"] > 10.5 else "ok"
        assert report.performance_status == expected == status, report.realised


def test_windows_of_a_log_with_late_feedback_give_one_history(setup):
    """Three weeks of log, labels joined weeks later, cut into 7-day windows: each window
    counts the labels of its own predictions, and the history stacks into one table."""
    from loopml.monitor import split_windows

    bundle, live = setup
    log = log_of(bundle, live, labels=[None] * live.height, hours=21 * 24).drop("_label")
    feedback = pl.DataFrame({
        "_request_id": log["_request_id"], "_record": log["_record"], "_label": live["label"],
        "_label_received_at": log["_predicted_at"] + timedelta(days=30),
    }).filter(pl.int_range(pl.len()) % 4 != 0)  # fmt: skip
    joined = log.join(feedback, on=["_request_id", "_record"], how="left")
    windows = split_windows(joined, "7d")
    reports = [check_window(bundle, w, model="cancer", version=3,
                            config=MonitoringConfig(min_rows=20)) for w in windows]  # fmt: skip

    assert len(reports) >= 3 and sum(r.rows for r in reports) == live.height
    for window, report in zip(windows, reports, strict=True):
        assert report.labelled_rows == window["_label"].is_not_null().sum() > 0
        assert report.start == window["_predicted_at"].min()
    history = pl.concat([history_rows(r) for r in reports])
    assert history["window_start"].n_unique() == len(reports)
    labelled = history.filter(pl.col("statistic") == "labelled_rows")["value"].sum()
    assert labelled == feedback.height
