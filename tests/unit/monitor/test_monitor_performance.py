"""Realised performance with evaluate's metrics, late labels, and the label-free estimate
(CBPE with isotonic calibration) on real data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from loopml.core.bundle import load_bundle, save_bundle
from loopml.core.contract import ColumnSpec, Contract
from loopml.core.errors import LoopmlError, MonitorError
from loopml.core.records import Calibration, ModelBundle, Reference
from loopml.evaluate import evaluate, task_metrics
from loopml.monitor import build_calibration, build_reference
from loopml.monitor._cbpe import calibrate, estimate_binary, expected_roc_auc
from loopml.monitor._performance import performance

START = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday


def _log(model, frame: pl.DataFrame, features: list[str], classes, *, positive=None, seed=0):
    """``frame`` as the prediction log holds it: features, _prediction, _score, times, keys."""
    proba = model.predict_proba(frame.select(features))
    pred = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
    score = proba[:, list(classes).index(positive)] if positive is not None else proba.max(1)
    rng = np.random.default_rng(seed)
    minutes = np.sort(rng.integers(0, 14 * 24 * 60, frame.height))
    return frame.select(features).with_columns(
        _request_id=pl.Series([f"r{i}" for i in range(frame.height)]),
        _record=pl.lit(0, dtype=pl.Int64),
        _predicted_at=pl.Series([START + timedelta(minutes=int(m)) for m in minutes]),
        _prediction=pl.Series(pred.tolist()),
        _score=pl.Series(score.astype(float)),
    )


@pytest.fixture(scope="module")
def penguins() -> pl.DataFrame:
    """The Palmer penguins: 344 birds of three species."""
    from palmerpenguins import load_penguins

    return pl.from_pandas(load_penguins())


@pytest.fixture(scope="module")
def cancer_model(cancer):
    """A scaled logistic regression on half the tumours; a quarter held out for calibration
    and a quarter as the monitored window (labels 'benign'/'malignant')."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    frame = cancer.with_columns(
        label=pl.when(pl.col("target") == 1).then(pl.lit("benign")).otherwise(pl.lit("malignant"))
    ).sample(fraction=1.0, shuffle=True, seed=3)
    features = [c for c in cancer.columns if c != "target"]
    n = frame.height
    train, held, live = frame[: n // 2], frame[n // 2 : 3 * n // 4], frame[3 * n // 4 :]
    model = make_pipeline(_scaled(features), LogisticRegression(C=0.05, max_iter=2000))
    model.fit(train.select(features), train["label"].to_numpy())
    return model, features, held, live


def _scaled(features: list[str]):
    """Scale the named columns and drop the rest, so the model scores frames with a target."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import StandardScaler

    return ColumnTransformer([("num", StandardScaler(), features)])


def _bundle(model, features, *, task="classification", classes=None, positive=None,
            calibration=None, evaluation=None, reference=None):  # fmt: skip
    contract = Contract(source="s", columns=tuple(ColumnSpec(name=f, type="float")
                                                 for f in features))  # fmt: skip
    return ModelBundle(
        model=model, contract=contract, task=task, target="label",
        feature_columns=tuple(features), classes=classes, positive_label=positive,
        reference=reference or Reference(features=(), calibration=calibration),
        evaluation=evaluation,
    )  # fmt: skip


def test_realised_metrics_are_evaluates_metrics_on_the_labelled_rows(cancer_model):
    """With every label back, the window's metrics equal loopml.evaluate's on the same rows."""
    model, features, _, live = cancer_model
    classes = tuple(model.classes_)
    log = _log(model, live, features, classes, positive="malignant")
    window = log.with_columns(_label=live["label"])
    perf = performance(_bundle(model, features, classes=classes, positive="malignant"), window)

    expected = evaluate(model, live.select(*features, "label"), task="classification",
                        target="label", positive_label="malignant")  # fmt: skip
    assert perf.labelled_rows == live.height
    assert perf.realised == pytest.approx(expected.metrics)


def test_rows_without_a_label_are_left_out_and_unknown_labels_too(cancer_model):
    """Only rows whose label arrived and names a class are scored."""
    model, features, _, live = cancer_model
    classes = tuple(model.classes_)
    labels = live["label"].to_list()
    labels[:40] = [None] * 40
    labels[40:45] = ["unknown"] * 5
    window = _log(model, live, features, classes, positive="malignant").with_columns(
        _label=pl.Series(labels)
    )
    perf = performance(_bundle(model, features, classes=classes, positive="malignant"), window)

    proba = model.predict_proba(live[45:].select(features))
    expected = task_metrics("classification", live["label"][45:].to_numpy(), proba,
                            classes=list(classes), positive_label="malignant")  # fmt: skip
    assert perf.labelled_rows == live.height - 45 == perf.errors.size
    assert perf.realised == pytest.approx(expected)


def test_labels_match_the_models_classes_by_one_rule(cancer_model):
    """Labels sent back as 'MALIGNANT' or ' benign ' count as the model's classes."""
    model, features, _, live = cancer_model
    classes = tuple(model.classes_)
    window = _log(model, live, features, classes, positive="malignant")
    exact = performance(_bundle(model, features, classes=classes, positive="malignant"),
                        window.with_columns(_label=live["label"]))  # fmt: skip
    shouted = performance(_bundle(model, features, classes=classes, positive="malignant"),
                          window.with_columns(_label=live["label"].str.to_uppercase()))  # fmt: skip
    assert shouted.realised == exact.realised and shouted.labelled_rows == live.height


def test_late_labels_count_in_the_window_of_their_prediction(cancer_model):
    """Labels that arrive weeks later, joined on the log's keys, land in their prediction's week."""
    model, features, _, live = cancer_model
    classes = tuple(model.classes_)
    log = _log(model, live, features, classes, positive="malignant")
    feedback = pl.DataFrame({
        "_request_id": log["_request_id"], "_record": log["_record"],
        "_label": live["label"],
        "_label_received_at": log["_predicted_at"] + timedelta(days=21),
    }).sample(fraction=0.7, seed=1)  # fmt: skip
    joined = log.join(feedback, on=["_request_id", "_record"], how="left")
    bundle = _bundle(model, features, classes=classes, positive="malignant")
    week = pl.col("_predicted_at").dt.truncate("7d")
    weeks = [part for _, part in joined.sort("_predicted_at").group_by(week, maintain_order=True)]

    assert len(weeks) >= 2
    for part in weeks:
        perf = performance(bundle, part)
        received = part.filter(pl.col("_label").is_not_null())
        assert perf.labelled_rows == received.height > 0
        assert (received["_label_received_at"] > part["_predicted_at"].max()).all()
        proba = model.predict_proba(received.select(features))
        expected = task_metrics("classification", received["_label"].to_numpy(), proba,
                                classes=list(classes), positive_label="malignant")  # fmt: skip
        assert perf.realised == pytest.approx(expected)


def test_multiclass_windows_are_scored_again_by_the_model(penguins):
    """A three-class log holds only the top probability, so the model scores the rows again."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    features = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    data = penguins.drop_nulls(features).sample(fraction=1.0, shuffle=True, seed=0)
    train, live = data[:200], data[200:]
    model = make_pipeline(_scaled(features), LogisticRegression(max_iter=1000))
    model.fit(train.select(features), train["species"].to_numpy())
    classes = tuple(model.classes_)
    window = _log(model, live, features, classes).with_columns(_label=live["species"])
    perf = performance(_bundle(model, features, classes=classes), window)

    expected = evaluate(model, live.select(*features, "species"), task="classification",
                        target="species")  # fmt: skip
    assert perf.realised == pytest.approx(expected.metrics)
    assert set(perf.estimated) == {"accuracy"}
    assert perf.estimated["accuracy"] == pytest.approx(
        model.predict_proba(live.select(features)).max(1).mean()
    )


def test_regression_windows_score_the_logged_prediction():
    """RMSE, MAE and R² of _prediction against _label, on the labelled rows only."""
    y = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    pred = np.array([1.5, 2.0, 2.0, 4.0, 8.0])
    window = pl.DataFrame({"_prediction": pred, "_label": [1.0, 2.0, 3.0, 4.0, None]})
    perf = performance(_bundle(None, [], task="regression"), window)

    assert perf.labelled_rows == 4
    assert perf.realised == pytest.approx(task_metrics("regression", y[:4], pred[:4]))
    assert perf.errors.tolist() == [0.5, 0.0, 1.0, 0.0]
    assert perf.estimated == {}


def test_a_window_that_cannot_be_scored_again_says_why(cancer_model):
    """No _score and missing features: a MonitorError naming a missing column."""
    model, features, _, live = cancer_model
    window = live.select(features[:3]).with_columns(_label=live["label"])
    bundle = _bundle(model, features, classes=tuple(model.classes_), positive="malignant")
    with pytest.raises(MonitorError) as info:
        performance(bundle, window)
    assert isinstance(info.value, LoopmlError) and repr(features[3]) in str(info.value)
    assert info.value.hint


# ---- calibration and the estimate ------------------------------------------------------------


def test_calibration_is_isotonic_and_round_trips_through_the_bundle(cancer_model, tmp_path):
    """Knots increase, probabilities never fall, and save/load keeps the map exactly."""
    model, features, held, _ = cancer_model
    scores = model.predict_proba(held.select(features))[:, 1]
    cal = build_calibration(scores, held["label"].to_list(), "malignant")
    assert cal.target == "positive" and cal.rows == held.height
    assert np.all(np.diff(cal.scores) > 0) and np.all(np.diff(cal.probabilities) >= 0)
    assert 0.0 <= min(cal.probabilities) <= max(cal.probabilities) <= 1.0

    ref = Reference(features=(), calibration=cal)
    bundle = _bundle(model, features, classes=tuple(model.classes_), positive="malignant",
                     reference=ref)  # fmt: skip
    loaded = load_bundle(save_bundle(bundle, tmp_path / "b"))
    assert loaded.reference.calibration == cal


def test_a_bundle_without_calibration_still_loads(cancer_model, tmp_path):
    """Bundles written before calibration existed load with calibration None."""
    model, features, _, _ = cancer_model
    loaded = load_bundle(save_bundle(_bundle(model, features, classes=("a", "b")), tmp_path))
    assert loaded.reference.calibration is None


def test_calibration_errors_are_monitor_errors():
    """Too few rows, or a multiclass map without predictions, is a clear MonitorError."""
    with pytest.raises(MonitorError, match="at least 2"):
        build_calibration([0.3], ["yes"], "yes")
    with pytest.raises(MonitorError, match="predicted classes"):
        build_calibration([0.3, 0.6], ["a", "b"], None)
    cal = build_calibration([0.9, 0.8, 0.6, 0.4], ["a", "b", "c", "c"], None,
                            predictions=["a", "b", "b", "c"])  # fmt: skip
    assert cal.target == "correct" and calibrate(cal, np.array([0.95]))[0] == 1.0


def test_the_estimate_of_perfectly_calibrated_scores_matches_the_truth_on_average():
    """Labels drawn with probability = score: the estimate is within sampling error."""
    rng = np.random.default_rng(4)
    scores = rng.beta(0.7, 0.7, 200_000)
    y = rng.random(scores.size) < scores
    est = estimate_binary(scores)
    truth = task_metrics("classification", y.astype(int), np.c_[1 - scores, scores],
                         classes=[0, 1], positive_label=1)  # fmt: skip
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        assert est[name] == pytest.approx(truth[name], abs=0.01), name


def test_expected_roc_auc_equals_weighted_roc_auc():
    """Each row as a positive with weight q and a negative with weight 1 - q."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    scores = np.round(rng.random(500), 2)  # ties
    q = rng.random(500)
    weighted = roc_auc_score(np.r_[np.ones(500), np.zeros(500)], np.r_[scores, scores],
                             sample_weight=np.r_[q, 1 - q])  # fmt: skip
    assert expected_roc_auc(scores, q) == pytest.approx(weighted)


def test_cbpe_on_held_out_tumours_is_within_a_few_points_of_the_truth(cancer_model):
    """Calibrated on held-out rows, the estimate is near the realised accuracy and AUC."""
    model, features, held, live = cancer_model
    classes = tuple(model.classes_)
    cal = build_calibration(model.predict_proba(held.select(features))[:, 1],
                            held["label"].to_list(), "malignant")  # fmt: skip
    window = _log(model, live, features, classes, positive="malignant").with_columns(
        _label=live["label"]
    )
    perf = performance(_bundle(model, features, classes=classes, positive="malignant",
                               calibration=cal), window)  # fmt: skip
    assert perf.estimated["accuracy"] == pytest.approx(perf.realised["accuracy"], abs=0.04)
    assert perf.estimated["roc_auc"] == pytest.approx(perf.realised["roc_auc"], abs=0.03)
    assert perf.estimated_labelled == perf.estimated  # every row is labelled


@pytest.mark.slow
def test_cbpe_on_unshifted_flights_is_within_two_points(january):
    """A logistic regression on January flights: the estimate on late January tracks the
    realised accuracy and ROC AUC of arriving more than 15 minutes late."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = ["dep_delay", "distance", "hour", "temp", "humid", "wind_speed", "visib"]
    jan = (
        january.drop_nulls([*features, "arr_delay"])
        .with_columns(late=pl.when(pl.col("arr_delay") > 15).then(pl.lit("yes"))
                      .otherwise(pl.lit("no")))
    )  # fmt: skip
    train, held, live = (jan.filter(pl.col("day").is_between(a, b))
                         for a, b in ((1, 10), (11, 20), (21, 31)))  # fmt: skip
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(train.select(features), train["late"].to_numpy())
    classes = tuple(model.classes_)
    cal = build_calibration(model.predict_proba(held.select(features))[:, 1],
                            held["late"].to_list(), "yes")  # fmt: skip
    window = _log(model, live, features, classes, positive="yes").with_columns(
        _label=live["late"]
    )
    perf = performance(_bundle(model, features, classes=classes, positive="yes",
                               calibration=cal), window)  # fmt: skip
    assert live.height > 5000
    for name in ("accuracy", "roc_auc", "f1"):
        assert perf.estimated[name] == pytest.approx(perf.realised[name], abs=0.02), name


def test_a_calibration_for_another_target_is_not_used():
    """A binary model ignores a multiclass 'correct' map and uses its raw scores."""
    cal = Calibration(target="correct", scores=(0.0, 1.0), probabilities=(0.5, 0.5))
    bundle = _bundle(None, [], classes=("no", "yes"), positive="yes", calibration=cal)
    perf = performance(bundle, pl.DataFrame({"_score": [0.9, 0.1]}))
    assert perf.estimated["accuracy"] == pytest.approx(0.9)


def test_reference_of_real_columns_and_calibration_live_together(cancer_model):
    """build_reference's statistics and a calibration share one Reference."""
    model, features, held, _ = cancer_model
    contract = Contract(source="s", columns=tuple(ColumnSpec(name=f, type="float")
                                                 for f in features[:3]))  # fmt: skip
    ref = build_reference(held, contract, columns=features[:3])
    cal = build_calibration(model.predict_proba(held.select(features))[:, 1],
                            held["label"].to_list(), "malignant")  # fmt: skip
    from dataclasses import replace

    both = replace(ref, calibration=cal)
    assert both.features == ref.features and both.calibration is cal
