"""Label quality and leakage checks on data whose answers are known: flipped labels, copied
targets, row numbers, realised times beside their schedule, and the real flights."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from loopml.core.errors import ConfigError, EmptyDataError, TargetError
from loopml.explore import check_labels, find_leaks, profile


def suspects(leakage, check=None) -> set[str]:
    return {s.column for s in leakage.suspects if check is None or s.check == check}


def blobs(n: int = 1000, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """Two well separated classes in two features; returns the frame and the true labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 2)) + np.where(y[:, None] == 1, 3.0, -3.0)
    return pl.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": np.where(y == 1, "yes", "no")}), y


# ---- label quality -------------------------------------------------------------------------


def test_flipped_labels_are_found_first():
    """Of 15 labels flipped far from the class boundary, at least 12 are found, and most
    rows flagged are flipped ones."""
    frame, _ = blobs(2000)
    clear = np.flatnonzero((frame["a"].abs() > 1.5) & (frame["b"].abs() > 1.5))
    flipped = np.random.default_rng(1).choice(clear, 15, replace=False)
    labels = frame["y"].to_numpy().copy()
    labels[flipped] = np.where(labels[flipped] == "yes", "no", "yes")
    q = check_labels(frame.with_columns(y=pl.Series(labels)), target="y", task="classification")
    found = {i.row for i in q.issues}
    assert len(found & set(flipped.tolist())) >= 12
    assert q.suspected <= 20 and len(q.issues) == q.suspected
    assert q.sampled_rows == 2000 and q.folds == 5 and "HistGradientBoosting" in q.model
    assert all(i.suggested != i.given and i.margin > 0 for i in q.issues)
    assert [i.self_confidence for i in q.issues] == sorted(i.self_confidence for i in q.issues)
    assert q.estimated_noise == pytest.approx(0.0075, abs=0.005)


def test_mislabels_use_a_bounded_sample_and_number_rows_in_the_frame():
    """With max_rows, the model sees that many rows; issues name rows of the whole frame."""
    frame, _ = blobs(3000)
    labels = frame["y"].to_numpy().copy()
    labels[2500] = "yes" if labels[2500] == "no" else "no"
    q = check_labels(frame.with_columns(y=pl.Series(labels)), target="y",
                     task="classification", max_rows=1000)
    assert q.sampled_rows == 1000 and q.rows == 3000
    assert all(0 <= i.row < 3000 for i in q.issues)


def test_conflicting_labels_are_counted_by_group_with_examples():
    """Identical feature rows with different labels: 2 groups, 5 rows; a consistent group of
    duplicates is no conflict."""
    frame = pl.DataFrame({
        "a": [1, 1, 1, 2, 2, 3, 3, 4],
        "b": ["x", "x", "x", "y", "y", "z", "z", "w"],
        "y": ["p", "p", "q", "p", "q", "p", "p", "q"],
    })  # fmt: skip
    q = check_labels(frame, target="y", task="classification")
    assert (q.conflicting_groups, q.conflicting_rows) == (2, 5)
    first = q.conflicts[0]
    assert first.rows == 3 and first.features == (("a", "1"), ("b", "x"))
    assert first.labels == (("p", 2), ("q", 1))
    assert q.features == ("a", "b")


def test_excluded_columns_do_not_make_rows_distinct():
    """An excluded row number would make every row unique; without it the conflict shows."""
    frame = pl.DataFrame({"row": [0, 1, 2, 3], "a": [1, 1, 2, 2], "y": [0, 1, 0, 0]})
    assert check_labels(frame, target="y", task="classification").conflicting_groups == 0
    q = check_labels(frame, target="y", task="classification", exclude=["row"])
    assert (q.conflicting_groups, q.conflicting_rows) == (1, 2)


def test_regression_conflicts_without_class_checks():
    """A regression target has conflicts (different values) but no classes or mislabels."""
    frame = pl.DataFrame({"a": [1, 1, 2, 3], "y": [1.0, 2.0, 3.0, 3.0]})
    q = check_labels(frame, target="y", task="regression")
    assert q.conflicting_groups == 1 and q.class_shares == () and q.model == ""


def test_class_imbalance_ratio_and_warning():
    """95 to 5 rows is a ratio of 19, imbalanced; 60 to 40 is not."""
    rng = np.random.default_rng(0)
    skewed = pl.DataFrame({"x": rng.normal(size=100), "y": ["a"] * 95 + ["b"] * 5})
    q = check_labels(skewed, target="y", task="classification")
    assert q.class_shares == (("a", 0.95), ("b", 0.05))
    assert q.imbalance_ratio == 19.0 and q.imbalanced
    even = pl.DataFrame({"x": rng.normal(size=100), "y": ["a"] * 60 + ["b"] * 40})
    assert not check_labels(even, target="y", task="classification").imbalanced


def test_label_checks_need_a_target_task():
    """Clustering has no labels to check, regression needs numbers: TargetErrors say so."""
    with pytest.raises(TargetError):
        check_labels(pl.DataFrame({"a": [1], "y": [1]}), target="y", task="clustering")
    with pytest.raises(TargetError) as info:
        check_labels(pl.DataFrame({"a": [1], "y": ["x"]}), target="y", task="regression")
    assert "numeric" in info.value.message and info.value.hint


# ---- leakage -------------------------------------------------------------------------------


def test_a_copied_target_is_suspected_and_honest_features_are_not():
    """A noisy copy of the target leaks; a weak feature and noise do not."""
    rng = np.random.default_rng(0)
    n = 4000
    weak = rng.normal(size=n)
    y = (weak + rng.normal(scale=2.0, size=n)) > 0
    copy = np.where(rng.random(n) < 0.02, ~y, y).astype(int)  # 2% of it disagrees
    frame = pl.DataFrame({"weak": weak, "noise": rng.normal(size=n), "copy": copy, "y": y})
    found = find_leaks(frame, target="y", task="classification")
    assert suspects(found) == {"copy"}
    assert found.metric == "roc_auc" and found.threshold == 0.95
    scores = dict(found.scores)
    assert scores["copy"] > 0.95 and 0.55 < scores["weak"] < 0.8 and scores["noise"] < 0.56


def test_regression_and_multiclass_leaks():
    """R² for regression, balanced accuracy for many classes."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=3000)
    y = 3 * x + rng.normal(scale=0.1, size=3000)
    frame = pl.DataFrame({"x": x, "z": rng.normal(size=3000), "y": y})
    found = find_leaks(frame, target="y", task="regression")
    assert found.metric == "r2" and suspects(found) == {"x"}
    classes = pl.DataFrame({"x": x, "z": rng.normal(size=3000),
                            "y": np.digitize(x, [-1, 0, 1]).astype(str)})
    found = find_leaks(classes, target="y", task="classification")
    assert found.metric == "balanced_accuracy" and suspects(found) == {"x"}


def test_id_like_columns():
    """Row numbers (any start), increasing sparse ids, UUIDs and hashes are id-like; unique
    floats, repeated codes and free text with spaces are not."""
    rng = np.random.default_rng(0)
    n = 500
    frame = pl.DataFrame({
        "row": np.arange(n) + 10_000_000,
        "order_seq": np.cumsum(rng.integers(1, 50, n)),
        "ref": [str(uuid.UUID(int=int(rng.integers(0, 2**62)))) for _ in range(n)],
        "user": [hashlib.sha1(str(i % 60).encode()).hexdigest() for i in range(n)],
        "price": rng.normal(100, 10, n),
        "shop": [f"s{i % 7}" for i in range(n)],
        "y": rng.integers(0, 2, n),
    })  # fmt: skip
    found = find_leaks(frame, target="y", task="classification")
    assert suspects(found, "id-like") == {"row", "order_seq", "ref", "user"}
    reasons = {s.column: s.reason for s in found.suspects}
    assert "numbered densely" in reasons["row"] and "increasing" in reasons["order_seq"]
    assert "UUID or a hash" in reasons["user"]


def test_id_like_check_runs_without_a_target():
    """Clustering has no target: only ids are looked for."""
    found = find_leaks(pl.DataFrame({"id": range(100), "x": [1.0, 2.0] * 50}), target=None,
                       task="clustering")
    assert suspects(found) == {"id"} and found.scores == () and found.metric == ""


def flights_like(n: int = 3000, seed: int = 0) -> pl.DataFrame:
    """Scheduled and realised clock times (HHMM), the delay computed from them, a date-time
    recorded at landing, and a target that depends on the delay."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    sched_min = rng.integers(5 * 60, 22 * 60, n)
    delay = np.round(rng.exponential(20, n) - 5).astype(int)
    actual = (sched_min + delay) % 1440
    days = rng.integers(0, 300, n)
    when = [start + timedelta(days=int(d), minutes=int(m)) for d, m in zip(days, sched_min)]
    landed = [w + timedelta(minutes=int(90 + d)) for w, d in zip(when, delay)]
    booked = [w - timedelta(days=int(k) + 1) for w, k in zip(when, rng.integers(0, 60, n))]
    return pl.DataFrame({
        "when": when, "sched_dep": (sched_min // 60) * 100 + sched_min % 60,
        "dep": (actual // 60) * 100 + actual % 60, "delay": delay, "landed_at": landed,
        "booked_at": booked, "distance": rng.integers(100, 3000, n),
        "late": (delay + rng.normal(scale=15, size=n)) > 15,
    })  # fmt: skip


def test_times_recorded_after_the_prediction_time():
    """The realised departure (its gap to the schedule predicts the target), the delay
    computed from it and a landing time after the row's time are suspected; the schedule, a
    booking made earlier, the time column and the target are not."""
    found = find_leaks(flights_like(), target="late", task="classification", time_column="when")
    after = suspects(found, "after prediction time")
    assert after == {"dep", "delay", "landed_at"}
    assert not suspects(found) & {"sched_dep", "booked_at", "when", "late", "distance"}
    reasons = {s.column: s.reason for s in found.suspects if s.check == "after prediction time"}
    assert "sched_dep" in reasons["dep"] and "dep - sched_dep" in reasons["delay"]
    assert found.time_column == "when"


def test_without_a_time_column_no_time_rules_run():
    """The time rules need to know when a prediction is made."""
    found = find_leaks(flights_like(), target="late", task="classification")
    assert not suspects(found, "after prediction time")


def test_bad_arguments_are_loopml_errors():
    """Unknown target or time column, a text time column, and an empty table."""
    frame = pl.DataFrame({"t": ["a", "b"], "y": [0, 1]})
    with pytest.raises(TargetError) as info:
        find_leaks(frame, target="yy", task="classification")
    assert "Did you mean 'y'" in info.value.message
    with pytest.raises(ConfigError) as info:
        find_leaks(frame, target="y", task="classification", time_column="tt")
    assert "time column" in info.value.message
    with pytest.raises(ConfigError) as info:
        find_leaks(frame, target="y", task="classification", time_column="t")
    assert "String" in info.value.message and info.value.hint
    with pytest.raises(EmptyDataError):
        find_leaks(frame.clear(), target="y", task="classification")


def test_flights_leaks_are_found(half_year):
    """On the real flights of January-June, the arrival delay, the departure delay and the
    realised departure and arrival times are suspected; the schedule is not."""
    found = find_leaks(half_year, target="late", task="classification",
                       time_column="time_hour")
    assert {"arr_delay", "dep_delay", "dep_time", "arr_time"} <= set(found.columns)
    assert not set(found.columns) & {"sched_dep_time", "sched_arr_time", "time_hour", "late",
                                     "carrier", "origin", "dest", "distance"}
    assert found.sampled_rows == 20_000  # the labelled rows, sampled


def test_profile_carries_the_findings(half_year):
    """The profile holds label quality and leakage, and warns on each suspected column."""
    p = profile(half_year, source="flights", target="late", task="classification",
                time_column="time_hour", exclude=["air_time"])
    assert p.leakage is not None and "dep_delay" in p.leakage.columns
    q = p.label_quality
    assert q is not None and "air_time" not in q.features and "arr_delay" not in q.features
    assert q.sampled_rows == 5_000 and q.suspected > 0 and q.class_shares[0][0] == "false"
    dep = next(c for c in p.columns if c.name == "dep_time")
    assert any(w.startswith("leak suspect") for w in dep.warnings)
