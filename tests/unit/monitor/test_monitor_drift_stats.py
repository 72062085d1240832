"""Drift statistics from mergeable counts, the decision rule, the domain classifier, data
quality, windows and the stored reference, on generated data with known shifts and on flights."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from loopml.core.bundle import load_bundle, reference_from_dict, save_bundle
from loopml.core.config import MonitoringConfig
from loopml.core.contract import ColumnSpec, Contract
from loopml.core.errors import MonitorError
from loopml.core.records import FeatureReference, ModelBundle
from loopml.monitor import build_reference, check_drift, split_windows
from loopml.monitor._bins import fine_reference
from loopml.monitor._counts import count
from loopml.monitor._drift import compare
from loopml.monitor._stats import ks_distance, wasserstein

CONFIG = MonitoringConfig()


def contract_of(frame: pl.DataFrame) -> Contract:
    def kind(dtype: pl.DataType) -> str:
        return "integer" if dtype.is_integer() else "float" if dtype.is_float() else "category"

    return Contract(source="g", columns=tuple(ColumnSpec(name=c, type=kind(frame[c].dtype))
                                              for c in frame.columns))  # fmt: skip


def with_missing(values: np.ndarray | list, rng: np.random.Generator, share: float) -> pl.Series:
    series = pl.Series(values)
    mask = pl.Series(rng.random(series.len()) < share)
    return series.to_frame("v").select(pl.when(mask).then(None).otherwise("v")).to_series()


def generated(rows: int, *, window: bool, seed: int = 0) -> pl.DataFrame:
    """9 shifted columns (means, spreads, category mixes, missing rates), 11 steady ones; the
    same shifts as bench/drift_data.py, drawn more simply."""
    rng = np.random.default_rng([seed, int(window)])
    w = window
    cats5 = np.array(["a", "b", "c", "d", "e"])
    mix5 = [0.24, 0.25, 0.2, 0.15, 0.16] if w else [0.3, 0.25, 0.2, 0.15, 0.1]
    zipf = 1 / np.arange(1, 13)
    zipf = zipf / zipf.sum()
    mix12 = np.r_[zipf[0] - 0.05, zipf[1:8], zipf[8:] + 0.0125] if w else zipf
    columns = {
        "mean_normal": rng.normal(0.1 if w else 0, 1, rows),
        "mean_lognormal": rng.lognormal(0.1 if w else 0, 1, rows),
        "mean_uniform": rng.uniform(0.03 if w else 0, 1.03 if w else 1, rows),
        "spread_up": rng.normal(5, 2.4 if w else 2, rows),
        "spread_down": rng.normal(10, 2.55 if w else 3, rows),
        "missing_number": with_missing(rng.exponential(1, rows), rng, 0.03 if w else 0.0),
        "mix_5": cats5[rng.choice(5, rows, p=mix5)],
        "mix_12": np.array([f"k{i}" for i in range(12)])[rng.choice(12, rows, p=mix12)],
        "missing_category": with_missing(cats5[rng.choice(4, rows)], rng, 0.04 if w else 0.01),
        "normal": rng.normal(3, 1.5, rows),
        "lognormal": rng.lognormal(1, 0.8, rows),
        "uniform": rng.uniform(-5, 5, rows),
        "exponential": with_missing(rng.exponential(2, rows), rng, 0.02),
        "poisson": rng.poisson(4, rows),
        "gamma": rng.gamma(2, 3, rows),
        "student_t": rng.standard_t(3, rows),
        "integer_0_100": rng.integers(0, 101, rows),
        "category_3": cats5[rng.choice(3, rows, p=[0.5, 0.3, 0.2])],
        "category_8": cats5[rng.choice(5, rows)],
        "category_30": np.array([f"v{i}" for i in range(30)])[rng.choice(30, rows)],
    }
    return pl.DataFrame(columns)


SHIFTED = {"mean_normal", "mean_lognormal", "mean_uniform", "spread_up", "spread_down",
           "missing_number", "mix_5", "mix_12", "missing_category"}  # fmt: skip


# ---- statistics against exact values ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["normal", "lognormal", "integer", "same"])
def test_binned_ks_and_wasserstein_are_close_to_scipys_exact_values(kind):
    """KS from the 101 stored quantiles is within 0.01 of scipy's exact statistic; Wasserstein
    from counts and per-bin sums within 2 % (or 0.002 standard deviations) of the exact one."""
    from scipy import stats

    rng = np.random.default_rng(3)
    a, b = {
        "normal": (rng.normal(0, 1, 200_000), rng.normal(0.1, 1.2, 150_000)),
        "lognormal": (rng.lognormal(0, 1, 200_000), rng.lognormal(0.05, 1, 150_000)),
        "integer": (rng.poisson(3, 200_000) * 1.0, rng.poisson(3.3, 150_000) * 1.0),
        "same": (rng.normal(0, 1, 200_000), rng.normal(0, 1, 150_000)),
    }[kind]
    ref = FeatureReference(name="x", kind="numeric", **fine_reference(np.sort(a)))
    counts = count(pl.Series(b), ref)
    assert abs(ks_distance(ref.fine_shares, counts) - stats.ks_2samp(a, b).statistic) <= 0.01
    exact = stats.wasserstein_distance(a, b)
    assert abs(wasserstein(ref, counts) - exact) <= max(0.02 * exact, 0.002 * a.std())


def test_merged_partition_counts_equal_one_pass_counts():
    """Counting three partitions and adding the counts gives the one-pass counts, hence the
    same statistics."""
    reference = build_reference(generated(20_000, window=False), contract_of(
        generated(10, window=False)), columns=sorted(SHIFTED), sample_rows=0)  # fmt: skip
    window = generated(9_000, window=True)
    parts = [window.slice(0, 2_000), window.slice(2_000, 4_500), window.slice(6_500, 2_500)]
    for ref in reference.features:
        whole = count(window[ref.name], ref)
        merged = sum((count(p[ref.name], ref) for p in parts[1:]), count(parts[0][ref.name], ref))
        assert np.array_equal(whole.coarse, merged.coarse), ref.name
        assert np.array_equal(whole.fine, merged.fine) and whole.unseen == merged.unseen
        np.testing.assert_allclose(whole.sums, merged.sums, rtol=1e-9, atol=1e-6)
        one, many = compare(ref, whole, CONFIG), compare(ref, merged, CONFIG)
        assert one.status == many.status
        assert one.stats == pytest.approx(many.stats, rel=1e-9, abs=1e-12)


# ---- the decision rule ---------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [200_000, pytest.param(1_000_000, marks=pytest.mark.slow)])
def test_known_shifts_are_found_and_steady_columns_are_not(rows):
    """All 9 modest shifts are flagged, no steady column is, and PSI alone misses most."""
    reference_frame = generated(rows, window=False)
    reference = build_reference(reference_frame, contract_of(reference_frame),
                                columns=reference_frame.columns)  # fmt: skip
    report = check_drift(reference, generated(rows, window=True), model="g", version=1,
                         config=CONFIG)  # fmt: skip
    flagged = {f.name for f in report.features if f.status != "ok"}
    assert flagged == SHIFTED
    by_name = {f.name: f for f in report.features}
    for name in SHIFTED:  # every shift is sized, not only significant
        drift = by_name[name]
        assert drift.effect >= CONFIG.warn_distance and drift.stats["p_value"] < 1e-6
    assert max(f.effect for f in report.features if f.name not in SHIFTED) < 0.02
    assert len([f for f in report.features if f.psi >= CONFIG.warn_psi]) <= 2
    assert by_name["missing_number"].null_rate == pytest.approx(0.03, abs=0.003)
    assert by_name["missing_number"].reference_null_rate == 0.0
    assert {"psi", "js", "chi2", "chi2_p", "ks", "ks_p", "wasserstein",
            "wasserstein_norm"} <= set(by_name["mean_normal"].stats)  # fmt: skip
    assert report.domain_auc is not None and 0.55 < report.domain_auc < 0.8


def test_small_windows_of_the_reference_distribution_rarely_alarm():
    """Forty 150-row windows of unshifted data: large-looking statistics from few rows are
    not significant, so at most one window has any flagged column."""
    reference_frame = generated(50_000, window=False)
    reference = build_reference(reference_frame, contract_of(reference_frame),
                                columns=reference_frame.columns, sample_rows=0)  # fmt: skip
    config = MonitoringConfig(min_rows=100)
    noisy = 0
    for seed in range(40):
        window = generated(150, window=False, seed=100 + seed)
        report = check_drift(reference, window, model="g", version=1, config=config)
        noisy += report.status != "ok"
        assert max(f.effect for f in report.features) > config.warn_distance  # chance is big
    assert noisy <= 1


def test_thresholds_and_significance_come_from_the_config():
    """Higher distance thresholds turn warnings into ok; a tiny p_value silences small windows."""
    frame = generated(50_000, window=False)
    reference = build_reference(frame, contract_of(frame), columns=sorted(SHIFTED),
                                sample_rows=0)  # fmt: skip
    window = generated(50_000, window=True)
    lenient = MonitoringConfig(warn_distance=0.5, alert_distance=0.9, warn_psi=5, alert_psi=9)
    assert check_drift(reference, window, model="g", version=1, config=lenient).status == "ok"
    report = check_drift(reference, window, model="g", version=1, config=CONFIG)
    assert report.thresholds["warn_distance"] == 0.05 and report.thresholds["p_value"] == 0.01
    assert {f.status for f in report.features} <= {"warn", "alert"}


# ---- multivariate drift, data quality ------------------------------------------------------------


def test_domain_classifier_sees_a_joint_shift_that_marginals_miss():
    """x and y keep their distributions but their correlation flips: no column drifts, the
    domain classifier's AUC does; a window like the reference stays near 0.5."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=40_000)
    y = x + rng.normal(scale=0.3, size=x.size)
    reference_frame = pl.DataFrame({"x": x[:20_000], "y": y[:20_000]})
    flipped = pl.DataFrame({"x": x[20_000:], "y": -y[20_000:]})
    same = pl.DataFrame({"x": x[20_000:], "y": y[20_000:]})
    reference = build_reference(reference_frame, contract_of(reference_frame), columns=["x", "y"],
                                sample_rows=3000)  # fmt: skip
    config = MonitoringConfig(domain_rows=3000)
    shifted = check_drift(reference, flipped, model="g", version=1, config=config)
    assert all(f.status == "ok" for f in shifted.features)
    assert shifted.domain_auc > 0.9 and shifted.domain_status == "alert"
    assert shifted.status == "alert"
    steady = check_drift(reference, same, model="g", version=1, config=config)
    assert abs(steady.domain_auc - 0.5) < 0.05 and steady.status == "ok"
    off = check_drift(reference, flipped, model="g", version=1,
                      config=MonitoringConfig(domain_rows=0))  # fmt: skip
    assert off.domain_auc is None and off.status == "ok"


def test_unseen_categories_null_rates_and_extra_columns_are_reported():
    """Values outside the reference's (or the contract's allowed) categories are counted per
    feature; the window's null rate sits beside the reference's; extra fields are named."""
    rng = np.random.default_rng(2)
    frame = pl.DataFrame({"colour": rng.choice(["red", "blue"], 5000),
                          "size": rng.normal(size=5000)})  # fmt: skip
    contract = Contract(source="g", columns=(
        ColumnSpec(name="colour", type="category", allowed=("red", "blue", "green")),
        ColumnSpec(name="size", type="float")))  # fmt: skip
    reference = build_reference(frame, contract, columns=["colour", "size"], sample_rows=0)
    assert reference.features[0].known == ("blue", "green", "red")
    window = pl.DataFrame({
        "colour": ["red"] * 400 + ["green"] * 50 + ["purple"] * 30 + [None] * 20,
        "size": [0.1] * 400 + [None] * 100, "coupon": ["x"] * 500,
    })  # fmt: skip
    report = check_drift(reference, window, model="g", version=1, config=CONFIG)
    colour, size = report.features
    assert colour.unseen == 30 and colour.stats["unseen"] == 30  # green is allowed
    assert colour.null_rate == pytest.approx(0.04) and colour.reference_null_rate == 0.0
    assert size.null_rate == pytest.approx(0.2) and size.unseen == 0
    assert report.extra_columns == ("coupon",)


def test_flights_january_against_july_and_against_itself(january, july, contract):
    """Real data: summer separates from winter (domain AUC near 1, temperature alerts with its
    shift in standard deviations); a sample of January does not."""
    columns = ["dep_delay", "distance", "temp", "humid", "carrier", "origin"]
    reference = build_reference(january, contract, columns=columns, sample_rows=2000)
    config = MonitoringConfig(domain_rows=2000)
    summer = check_drift(reference, july, model="f", version=1, config=config)
    temp = next(f for f in summer.features if f.name == "temp")
    assert temp.status == "alert" and temp.stats["wasserstein_norm"] > 2
    assert summer.domain_auc > 0.95
    winter = check_drift(reference, january.sample(3000, seed=4), model="f", version=1,
                         config=config)  # fmt: skip
    assert winter.status == "ok" and winter.domain_auc < 0.6


# ---- bad input -----------------------------------------------------------------------------------


def test_bad_input_is_a_monitor_error_with_a_hint():
    """Warn above alert (any pair), text where numbers were, and too few rows are refused."""
    frame = generated(2_000, window=False).select("normal", "category_3")
    reference = build_reference(frame, contract_of(frame), columns=frame.columns, sample_rows=0)
    for bad in ({"warn_distance": 0.3, "alert_distance": 0.2}, {"warn_auc": 0.9, "alert_auc": 0.8},
                {"warn_psi": 0.5, "alert_psi": 0.2}):  # fmt: skip
        with pytest.raises(MonitorError) as error:
            check_drift(reference, frame, model="g", version=1, config=MonitoringConfig(**bad))
        warn = next(iter(bad))
        assert warn in str(error.value) and warn in error.value.hint
    with pytest.raises(MonitorError, match="'normal' of the window is String") as error:
        check_drift(reference, frame.with_columns(normal=pl.lit("high")), model="g", version=1,
                    config=CONFIG)  # fmt: skip
    assert "contract" in error.value.hint
    with pytest.raises(MonitorError, match="needs at least 100") as error:
        check_drift(reference, frame.head(20), model="g", version=1, config=CONFIG)
    assert "min_rows" in error.value.hint
    with pytest.raises(MonitorError, match="numeric") as error:
        build_reference(frame.with_columns(normal=pl.lit("x")), contract_of(frame),
                        columns=["normal"])  # fmt: skip


# ---- windows -------------------------------------------------------------------------------------


def test_split_windows_cuts_aligned_time_windows_or_row_counts():
    """Days are UTC days; empty days are left out; row windows keep the order; every column
    stays; bad specs and logs without times are MonitorErrors."""
    start = datetime(2024, 3, 1, tzinfo=UTC)
    hours = [0, 5, 23, 24, 30, 24 * 3 + 1]  # day 1: 3 rows, day 2: 2, day 3: none, day 4: 1
    log = pl.DataFrame({"_predicted_at": [start + timedelta(hours=h) for h in reversed(hours)],
                        "x": list(range(6)), "_score": [0.5] * 6})  # fmt: skip
    days = split_windows(log, "1d")
    assert [w.height for w in days] == [3, 2, 1] and days[0].columns == log.columns
    assert all(w["_predicted_at"].dt.date().n_unique() == 1 for w in days)
    assert [w.height for w in split_windows(log, "7d")] == [6]
    rows = split_windows(log, "4rows")
    assert [w.height for w in rows] == [4, 2] and rows[0]["_predicted_at"].is_sorted()
    with pytest.raises(MonitorError, match="not a monitoring window"):
        split_windows(log, "weekly")
    with pytest.raises(MonitorError, match="_predicted_at") as error:
        split_windows(log.drop("_predicted_at"), "1d")
    assert "rows" in error.value.hint
    assert split_windows(log.head(0), "1d") == []


# ---- the stored reference ------------------------------------------------------------------------


def test_bundle_keeps_the_fine_reference_and_the_row_sample(tmp_path):
    """save_bundle writes the sample as Parquet beside reference.json; load_bundle restores
    the same reference; a reference written before the finer statistics still checks."""
    frame = generated(3_000, window=False).select("normal", "poisson", "category_3")
    contract = contract_of(frame)
    reference = build_reference(frame, contract, columns=frame.columns, sample_rows=500)
    bundle = ModelBundle(model={"fitted": True}, contract=contract, task="regression",
                         target="y", feature_columns=tuple(frame.columns), classes=None,
                         positive_label=None, reference=reference)  # fmt: skip
    folder = save_bundle(bundle, tmp_path / "bundle")
    assert (folder / "reference_sample.parquet").exists()
    loaded = load_bundle(folder).reference
    assert loaded.sample.equals(reference.sample) and loaded.sample.height == 500
    assert replace(loaded, sample=None) == replace(reference, sample=None)
    old = reference_from_dict({"rows": 3000, "features": [
        {"name": f.name, "kind": f.kind, "edges": list(f.edges), "categories":
         list(f.categories), "shares": list(f.shares), "rows": f.rows}
        for f in reference.features]})  # fmt: skip
    report = check_drift(old, generated(3_000, window=True), model="g", version=1, config=CONFIG)
    assert "wasserstein" not in report.features[0].stats and "js" in report.features[0].stats
    assert report.domain_auc is None
