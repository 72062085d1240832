"""Reference statistics and PSI drift, on hand-computed values and on real data."""

from __future__ import annotations

import doctest
import math

import numpy as np
import polars as pl
import pytest

import loopml.monitor
from loopml.core.config import MonitoringConfig
from loopml.core.contract import ColumnSpec, Contract
from loopml.core.errors import LoopmlError, MonitorError
from loopml.monitor import build_reference, check_drift, psi

FEATURES = ["dep_delay", "distance", "temp", "humid", "carrier", "tailnum", "origin"]
CONFIG = MonitoringConfig()


def feature(report, name):
    return next(f for f in report.features if f.name == name)


@pytest.fixture(scope="module")
def reference(january, contract):
    return build_reference(
        january, contract, columns=[*FEATURES, "time_hour"], predictions=january["_score"]
    )


# ---- psi -------------------------------------------------------------------------------------


def test_psi_of_identical_shares_is_zero():
    """The same distribution has no drift, empty bins included."""
    assert psi([0.2, 0.3, 0.5, 0.0], [0.2, 0.3, 0.5, 0.0]) == pytest.approx(0.0, abs=1e-12)


def test_psi_matches_hand_computed_values():
    """PSI = sum (c - r) ln(c / r), with empty bins floored at 1e-4."""
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.4 * math.log(1.8) + 0.4 * math.log(5))
    three = 0.2 * math.log(4 / 3)  # two bins swap 0.1 of the rows
    assert psi([0.3, 0.4, 0.3], [0.4, 0.3, 0.3]) == pytest.approx(three)
    empty = -0.1 * math.log(0.4 / 0.5) + (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    assert psi([0.5, 0.5, 0.0], [0.5, 0.4, 0.1]) == pytest.approx(empty)


def test_psi_is_symmetric_non_negative_and_grows_with_the_shift():
    """Swapping reference and current changes nothing; bigger shifts score higher."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
        assert psi(a, b) == pytest.approx(psi(b, a)) and psi(a, b) >= 0
    base = [0.25, 0.25, 0.25, 0.25]
    shifts = [psi(base, [0.25 + d, 0.25, 0.25, 0.25 - d]) for d in (0.02, 0.08, 0.16, 0.24)]
    assert shifts == sorted(shifts)


def test_psi_needs_shares_over_the_same_bins():
    """Different numbers of bins are a MonitorError, not a numpy broadcast error."""
    with pytest.raises(MonitorError, match="same bins"):
        psi([0.5, 0.5], [0.2, 0.3, 0.5])


# ---- build_reference ---------------------------------------------------------------------------


def test_numeric_reference_has_quantile_bins_and_a_missing_share(reference, january):
    """Inner edges are sorted and unique; shares cover the bins plus a last missing share."""
    temp = next(f for f in reference.features if f.name == "temp")
    assert temp.kind == "numeric" and list(temp.edges) == sorted(set(temp.edges))
    assert len(temp.edges) == 9 and len(temp.shares) == 11
    assert sum(temp.shares) == pytest.approx(1.0)
    assert all(0.07 < s < 0.13 for s in temp.shares[:-1])  # deciles hold ~10% each
    dep = next(f for f in reference.features if f.name == "dep_delay")
    missing = january["dep_delay"].null_count() / january.height
    assert dep.shares[-1] == pytest.approx(missing) and missing > 0


def test_categorical_reference_keeps_the_top_20_then_other_and_missing(reference, january):
    """Categories keep at most 20 values; the rest is one "other" share."""
    carrier = next(f for f in reference.features if f.name == "carrier")
    assert carrier.kind == "categorical" and len(carrier.categories) == 16
    assert carrier.shares[-2:] == (0.0, 0.0)  # no other, no missing
    tail = next(f for f in reference.features if f.name == "tailnum")
    counts = january["tailnum"].drop_nulls().value_counts(sort=True)
    assert tail.categories[0] == counts["tailnum"][0] and len(tail.categories) == 20
    assert tail.shares[-2] == pytest.approx(1 - counts["count"].head(20).sum()
                                            / january.height - tail.shares[-1])  # fmt: skip


def test_datetime_columns_are_skipped_and_scores_become_the_prediction(reference, january):
    """time_hour is not monitored; float predictions are binned as _score."""
    assert "time_hour" not in [f.name for f in reference.features]
    assert reference.rows == january.height
    assert reference.prediction.name == "_score" and reference.prediction.kind == "numeric"


def test_labels_and_booleans_are_categorical(january, contract):
    """Non-float predictions are _prediction categories; boolean columns are categorical."""
    frame = january.with_columns(delayed=pl.col("dep_delay") > 15)
    contract = contract.with_column(ColumnSpec(name="origin", type="category"))
    contract = Contract(source="f", columns=(*contract.columns, ColumnSpec(name="delayed",
                        type="boolean")))  # fmt: skip
    ref = build_reference(frame, contract, columns=["delayed"], predictions=frame["carrier"])
    assert ref.features[0].kind == "categorical" and set(ref.features[0].categories) == {
        "true", "false"}  # fmt: skip
    assert ref.prediction.name == "_prediction" and ref.prediction.kind == "categorical"


def test_bin_edges_are_right_closed():
    """A value equal to an edge falls in the bin that ends there."""
    contract = Contract(source="s", columns=(ColumnSpec(name="x", type="integer"),))
    frame = pl.DataFrame({"x": [1, 2, 3, 4]})
    ref = build_reference(frame, contract, columns=["x"], bins=2)
    assert ref.features[0].edges == (2.0,)
    assert ref.features[0].shares == (0.5, 0.5, 0.0)  # {1, 2} | {3, 4} | missing


def test_reference_errors_name_the_column(january, contract):
    """Columns outside the contract or the frame are MonitorErrors that say which."""
    with pytest.raises(MonitorError, match="Did you mean 'temp'"):
        build_reference(january, contract, columns=["tmp"])
    with pytest.raises(MonitorError, match="'humid' is in the contract but not"):
        build_reference(january.drop("humid"), contract, columns=["humid"])
    with pytest.raises(MonitorError, match="at least 2"):
        build_reference(january, contract, columns=["temp"], bins=1)
    with pytest.raises(MonitorError, match="no rows"):
        build_reference(january.head(0), contract, columns=["temp"])


# ---- check_drift -------------------------------------------------------------------------------


def test_january_against_july_drifts_in_temperature_not_carriers(reference, july):
    """Summer weather alerts; the airline mix barely moves; overall status is the worst."""
    report = check_drift(reference, july, model="flights", version=1, config=CONFIG)
    temp, carrier = feature(report, "temp"), feature(report, "carrier")
    assert temp.status == "alert" and temp.psi > 1.0
    assert carrier.status == "ok" and carrier.psi < 0.05
    assert report.status == "alert" and report.current_rows == july.height
    assert report.reference_rows == reference.rows
    assert report.thresholds["warn_psi"] == 0.1 and report.thresholds["alert_psi"] == 0.25
    for f in report.features:
        assert len(f.labels) == len(f.reference_shares) == len(f.current_shares)
        assert sum(f.current_shares) == pytest.approx(1.0)
    assert report.prediction.name == "_score" and 0.01 < report.prediction.psi < 0.25


def test_window_is_the_span_of_predicted_at(reference, july):
    """window_start and window_end are the first and last _predicted_at."""
    report = check_drift(reference, july, model="flights", version=1, config=CONFIG)
    assert report.window_start == july["_predicted_at"].min()
    assert report.window_end == july["_predicted_at"].max()
    bare = check_drift(reference, july.drop("_predicted_at"), model="m", version=1,
                       config=CONFIG)  # fmt: skip
    assert bare.window_start is None and bare.window_end is None


def test_a_sample_of_the_reference_period_does_not_drift(reference, january):
    """Rows drawn from the same month as the reference stay ok everywhere."""
    window = january.sample(n=5000, seed=1)
    report = check_drift(reference, window, model="flights", version=1, config=CONFIG)
    assert report.status == "ok", [(f.name, f.psi) for f in report.features]


def test_separated_tumour_classes_drift_and_random_halves_do_not(cancer):
    """Benign against malignant tumours alerts on size; two random halves stay ok."""
    names = ["mean radius", "mean texture", "mean smoothness"]
    contract = Contract(source="c", columns=tuple(ColumnSpec(name=n, type="float")
                                                  for n in names))  # fmt: skip
    config = MonitoringConfig(min_rows=50)
    benign, malignant = cancer.filter(pl.col("target") == 1), cancer.filter(pl.col("target") == 0)
    report = check_drift(build_reference(benign, contract, columns=names), malignant,
                         model="c", version=1, config=config)  # fmt: skip
    assert feature(report, "mean radius").status == "alert"
    shuffled = cancer.sample(fraction=1.0, shuffle=True, seed=0)
    half = shuffled.height // 2
    report = check_drift(build_reference(shuffled.head(half), contract, columns=names),
                         shuffled.tail(-half), model="c", version=1, config=config)  # fmt: skip
    assert report.status == "ok"


def test_counts_of_chunks_add_up_to_the_counts_of_the_window(reference, july):
    """Checking two halves of a window and the whole gives bin counts that add up."""
    first, second = july.head(july.height // 2), july.tail(july.height - july.height // 2)

    def counts(window):
        report = check_drift(reference, window, model="m", version=1, config=CONFIG)
        return {f.name: np.rint(np.array(f.current_shares) * window.height)
                for f in report.features}  # fmt: skip

    a, b, whole = counts(first), counts(second), counts(july)
    for name in whole:
        assert np.array_equal(a[name] + b[name], whole[name]), name


def test_unseen_categories_count_as_other_and_new_highs_fill_the_top_bin(reference, july):
    """A carrier never seen in training is "other"; temperatures above the reference range
    land in the last bin."""
    window = july.with_columns(carrier=pl.lit("ZZ"), temp=pl.lit(200.0))
    report = check_drift(reference, window, model="m", version=1, config=CONFIG)
    carrier, temp = feature(report, "carrier"), feature(report, "temp")
    assert carrier.current_shares[carrier.labels.index("other")] == 1.0
    assert temp.current_shares[-2] == 1.0 and temp.labels[-2].startswith(">")


def test_a_regression_log_without_scores_is_compared_on_its_prediction(reference, july):
    """When _score is empty, a numeric _prediction carries the predicted value."""
    window = july.with_columns(_prediction=pl.col("_score"), _score=pl.lit(None, pl.Float64))
    report = check_drift(reference, window, model="m", version=1, config=CONFIG)
    full = check_drift(reference, july, model="m", version=1, config=CONFIG)
    assert report.prediction.psi == pytest.approx(full.prediction.psi)


def test_too_few_rows_is_a_monitor_error_with_counts_and_a_hint(reference, july):
    """A short window says how many rows it has, how many are needed and what to do."""
    with pytest.raises(MonitorError) as info:
        check_drift(reference, july.head(42), model="m", version=1, config=CONFIG)
    error = info.value
    assert isinstance(error, LoopmlError) and isinstance(error, ValueError)
    assert "42 prediction rows" in error.message and "at least 100" in error.message
    assert "monitoring.min_rows" in error.hint and "traffic" in error.hint


def test_missing_or_mistyped_columns_are_named(reference, july):
    """A window without a monitored column, or with text where numbers were, names it."""
    with pytest.raises(MonitorError, match="'temp'"):
        check_drift(reference, july.drop("temp"), model="m", version=1, config=CONFIG)
    with pytest.raises(MonitorError, match="'temp' of the window is String"):
        check_drift(reference, july.with_columns(temp=pl.lit("warm")), model="m", version=1,
                    config=CONFIG)  # fmt: skip
    with pytest.raises(MonitorError, match="no '_score' column"):
        check_drift(reference, july.drop("_score", "_prediction"), model="m", version=1,
                    config=CONFIG)  # fmt: skip


def test_thresholds_come_from_the_config(reference, july):
    """A stricter config turns the same drift into alerts; warn above alert is refused."""
    strict = MonitoringConfig(warn_psi=0.0001, alert_psi=0.0002)
    report = check_drift(reference, july, model="m", version=1, config=strict)
    significant = [f for f in report.features if f.stats["chi2_p"] < strict.p_value]
    assert len(significant) >= 6 and all(f.status == "alert" for f in significant)
    assert feature(report, "origin").status == "ok"  # a tiny, non-significant change
    with pytest.raises(MonitorError, match="warn_psi"):
        check_drift(reference, july, model="m", version=1,
                    config=MonitoringConfig(warn_psi=0.5, alert_psi=0.2))  # fmt: skip


def test_docstring_examples_run():
    """The examples in the monitor docstrings are correct."""
    import loopml.monitor._bins as bins
    import loopml.monitor._drift as drift
    import loopml.monitor._reference as ref

    for module in (loopml.monitor, drift, ref, bins):
        assert doctest.testmod(module).failed == 0, module.__name__
