"""Profiling real tables: statistics, distributions, target relationships and warnings."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

import loopml.explore
from loopml.core.errors import EmptyDataError, TargetError
from loopml.explore import profile


def column(p, name):
    return next(c for c in p.columns if c.name == name)


def test_every_column_is_profiled_once_in_table_order(late_profile, half_year):
    """A profile has one ColumnProfile per column, in order, with the right kinds."""
    assert [c.name for c in late_profile.columns] == half_year.columns
    kinds = {c.name: c.kind for c in late_profile.columns}
    assert kinds["dep_delay"] == kinds["temp"] == "numeric"
    assert kinds["carrier"] == kinds["tailnum"] == "categorical"
    assert kinds["time_hour"] == "datetime" and kinds["late"] == "boolean"
    assert late_profile.rows == half_year.height == 166_158
    assert late_profile.sampled_rows == half_year.height  # under max_rows: no sampling


def test_numeric_statistics_match_polars(late_profile, half_year):
    """count, nulls, distinct, mean, std, quartiles, zeros and skew are those of the data."""
    values = half_year["dep_delay"]
    dep = column(late_profile, "dep_delay")
    assert (dep.count, dep.nulls) == (values.count(), values.null_count())
    assert dep.distinct == values.drop_nulls().n_unique()
    assert dep.stats["mean"] == pytest.approx(values.mean())
    assert dep.stats["std"] == pytest.approx(values.std())
    assert dep.stats["min"] == values.min() and dep.stats["max"] == values.max()
    assert dep.stats["median"] == pytest.approx(values.median())
    assert dep.stats["q25"] == pytest.approx(values.quantile(0.25, "linear"))
    assert dep.stats["zeros"] == (values == 0).sum()
    assert dep.stats["skew"] > 3


def test_histograms_count_every_value_in_about_25_bins(late_profile):
    """Each numeric and datetime histogram has 1-32 labelled bins that add up to the count."""
    for c in late_profile.columns:
        if c.kind in ("numeric", "datetime"):
            labels, counts = c.histogram
            assert len(labels) == len(counts) <= 40, c.name
            assert sum(counts) == c.count, c.name
    labels, _ = column(late_profile, "dep_delay").histogram
    assert labels[0].startswith("<") and labels[-1].startswith("≥")  # long tails overflow
    assert column(late_profile, "hour").histogram[0] == tuple(str(h) for h in range(5, 24))


def test_categorical_top_values_and_other_share(late_profile, half_year):
    """Top values are the most frequent ones with exact counts; the rest is "other"."""
    dest = column(late_profile, "dest")
    counts = half_year["dest"].value_counts(sort=True)
    assert dest.top_values[0] == tuple(counts["dest"].head(20))
    assert dest.top_values[1] == tuple(counts["count"].head(20))
    assert dest.stats["other_share"] == pytest.approx(1 - sum(dest.top_values[1]) / dest.count)
    assert column(late_profile, "carrier").stats["other_share"] == 0  # 16 carriers all shown


def test_datetime_range_is_in_epoch_seconds_with_a_time_histogram(late_profile):
    """A datetime column reports its first and last moment and counts per period."""
    t = column(late_profile, "time_hour")
    assert datetime.fromtimestamp(t.stats["min"], UTC) == datetime(2013, 1, 1, 10, tzinfo=UTC)
    assert t.stats["span_days"] == pytest.approx(180.7, abs=0.1)
    assert t.histogram[0][0] == "2012-12-31"  # weekly bins start on Monday


def test_class_balance_and_the_class_relationships_show(late_profile, half_year):
    """Classification: class counts, and the positive class is "true" for a boolean target."""
    counts = half_year["late"].drop_nulls().value_counts(sort=True)
    assert late_profile.target_distribution == (("false", "true"), tuple(counts["count"]))
    index = int(column(late_profile, "late").stats["positive_index"])
    assert late_profile.target_distribution[0][index] == "true"


def test_relationship_rates_are_per_quantile_bin(late_profile, half_year):
    """Late-arrival rate per departure-delay decile rises from near 0 to near 1."""
    labels, rates, rows = column(late_profile, "dep_delay").target_relation
    assert len(labels) == len(rates) == len(rows) <= 11
    assert rates[0] < 0.1 and rates[-1] > 0.95
    assert all(0 <= r <= 1 for r in rates)
    assert sum(rows) == half_year["late"].count()  # every row with a target, in some bin
    assert "missing" in column(late_profile, "pressure").target_relation[0]


def test_association_ranks_features_and_flags_the_leak(late_profile):
    """arr_delay defines the target (leak), dep_delay predicts it, the flight number barely."""
    score = {c.name: c.association for c in late_profile.columns}
    assert score["late"] is None
    assert score["arr_delay"] == pytest.approx(1.0, abs=0.01)
    assert 0.3 < score["dep_delay"] < 0.9
    assert score["flight"] < 0.05 and score["year"] == 0
    leak = column(late_profile, "arr_delay").warnings
    assert any(w.startswith("possible leak") for w in leak)
    assert not any("leak" in w for w in column(late_profile, "dep_delay").warnings)


def test_regression_profile_uses_target_means_and_correlation_ratio(delay_profile):
    """Regression: a target histogram, mean delay per bin, eta-based association."""
    labels, counts = delay_profile.target_distribution
    assert sum(counts) == column(delay_profile, "arr_delay").count
    labels, means, _ = column(delay_profile, "dep_delay").target_relation
    assert means[-1] > 60 > means[0]
    score = {c.name: c.association or 0.0 for c in delay_profile.columns}
    assert max(score, key=score.get) == "dep_delay" and score["dep_delay"] > 0.7
    assert score["year"] == 0 and score["minute"] < 0.1


def test_warnings_name_constant_missing_high_cardinality_skewed_and_id_like(late_profile):
    """Columns with common problems carry a warning a reader can act on."""

    def warned(name, prefix):
        return any(w.startswith(prefix) for w in column(late_profile, name).warnings)

    assert warned("year", "constant")
    assert warned("wind_gust", "mostly missing")
    assert warned("tailnum", "high cardinality")
    assert warned("precip", "highly skewed")
    assert not column(late_profile, "distance").warnings


def test_unique_integers_and_strings_are_id_like_but_continuous_floats_are_not():
    """A row number or a unique code is id-like; a measurement with unique values is not."""
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({
        "row": np.arange(500), "code": [f"A{i:04d}" for i in range(500)],
        "weight": rng.normal(70, 10, 500), "y": rng.integers(0, 2, 500),
    })  # fmt: skip
    p = profile(frame, source="ids", target="y", task="classification")
    assert any(w.startswith("id-like") for w in column(p, "row").warnings)
    assert any(w.startswith("id-like") for w in column(p, "code").warnings)
    assert not column(p, "weight").warnings


def test_provenance_and_underscore_columns_are_skipped(half_year):
    """Columns loopml adds (_ingest_id, _source_row ...) are never profiled."""
    frame = half_year.head(2000).with_columns(
        _ingest_id=pl.lit("i-1"), _source_row=pl.int_range(pl.len()), _score=pl.lit(0.5)
    )
    p = profile(frame, source="flights", target="late", task="classification")
    assert not any(c.name.startswith("_") for c in p.columns)


def test_sampling_bounds_the_heavy_parts_and_repeats_with_the_seed(half_year):
    """max_rows samples the relationships; statistics still use every row; seeds repeat."""
    a = profile(half_year, source="f", target="late", task="classification", max_rows=20_000)
    b = profile(half_year, source="f", target="late", task="classification", max_rows=20_000)
    assert a == b and a.sampled_rows == 20_000
    assert column(a, "dep_delay").count == half_year["dep_delay"].count()
    assert sum(column(a, "dep_delay").target_relation[2]) < 20_000


def test_correlations_are_symmetric_pearson_on_numeric_columns(late_profile, half_year):
    """The matrix is symmetric with a unit diagonal and matches Polars' pairwise Pearson."""
    names, matrix = late_profile.correlations
    m = np.array(matrix)
    assert np.allclose(m, m.T) and np.allclose(np.diag(m), 1)
    assert "carrier" not in names and "year" not in names  # text and constant columns
    i, j = names.index("dep_delay"), names.index("arr_delay")
    expected = half_year.select(pl.corr("dep_delay", "arr_delay")).item()
    assert m[i, j] == pytest.approx(expected, abs=1e-4)


def test_clustering_has_no_target_side():
    """Without a target there is no balance, relationship or association."""
    from palmerpenguins import load_penguins

    frame = pl.from_pandas(load_penguins())
    p = profile(frame, source="penguins", target=None, task="clustering")
    assert p.target_distribution is None
    assert all(c.target_relation is None and c.association is None for c in p.columns)


def test_multiclass_relationships_show_the_most_frequent_class():
    """For three penguin species the relationships show the share of Adelie."""
    from palmerpenguins import load_penguins

    frame = pl.from_pandas(load_penguins())
    p = profile(frame, source="penguins", target="species", task="classification")
    labels, _ = p.target_distribution
    assert labels[int(column(p, "species").stats["positive_index"])] == "Adelie"
    assert column(p, "flipper_length_mm").association > 0.3
    assert column(p, "island").target_relation[0][:3] == ("Biscoe", "Dream", "Torgersen")


def test_nan_counts_as_missing():
    """A float NaN is a missing value, not a number."""
    frame = pl.DataFrame({"x": [1.0, float("nan"), 3.0, None]})
    x = profile(frame, source="s", target=None, task="clustering").columns[0]
    assert (x.count, x.nulls, x.stats["mean"]) == (2, 2, 2.0)


def test_bad_input_raises_loopml_errors_with_hints(half_year):
    """Unknown targets and tasks, a text regression target and an empty table are explained."""
    with pytest.raises(TargetError, match="Did you mean 'late'") as info:
        profile(half_year, source="f", target="lat", task="classification")
    assert "problem.target" in info.value.hint
    with pytest.raises(TargetError, match="Unknown task"):
        profile(half_year, source="f", target="late", task="ranking")
    with pytest.raises(TargetError, match="numeric target"):
        profile(half_year, source="f", target="carrier", task="regression")
    with pytest.raises(EmptyDataError, match="0 rows"):
        profile(half_year.head(0), source="f", target=None, task="clustering")


def test_relationships_use_a_sample_while_counts_use_every_row(half_year):
    """With max_rows below the table's size, relationships use that many sampled rows (what
    bounds the cost of profiling) while counts and the class balance cover every row."""
    p = profile(half_year, source="flights", target="late", task="classification",
                max_rows=20_000, seed=1)
    assert (p.rows, p.sampled_rows) == (half_year.height, 20_000)
    assert sum(p.target_distribution[1]) == half_year["late"].count()
    assert column(p, "dep_delay").count == half_year["dep_delay"].count()
    assert sum(column(p, "dep_delay").target_relation[2]) <= 20_000


def test_docstring_examples_run():
    """The examples in the explore docstrings are correct."""
    import loopml.core.ids as ids
    import loopml.explore._bins as bins
    import loopml.explore._confident as confident
    import loopml.explore._labels as labels
    import loopml.explore._leakage as leakage
    import loopml.explore._oof as oof
    import loopml.explore._pairs as pairs
    import loopml.explore._profile as prof
    import loopml.explore._sections as sections
    import loopml.explore._target as target
    import loopml.explore._timeleaks as timeleaks

    for module in (loopml.explore, prof, target, bins, ids, confident, labels, leakage, oof,
                   timeleaks, sections, pairs):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_dates_durations_and_nested_values_are_profiled():
    """Dates are datetimes, durations are seconds, lists are profiled as their text."""
    from datetime import date, timedelta

    frame = pl.DataFrame({
        "day": [date(2020, 1, 1) + timedelta(days=i % 28) for i in range(300)],
        "wait": [timedelta(seconds=i % 60) for i in range(300)],
        "tags": [[i % 3] for i in range(300)],
        "y": [i % 2 for i in range(300)],
    })  # fmt: skip
    p = profile(frame, source="s", target="y", task="classification")
    day, wait, tags = column(p, "day"), column(p, "wait"), column(p, "tags")
    assert day.kind == "datetime" and day.stats["span_days"] == 27
    labels = day.target_relation[0]
    assert len(set(labels)) == len(labels) and labels[0] == "≤ 2020-01-03"
    assert wait.kind == "numeric" and wait.stats["max"] == 59
    assert tags.kind == "categorical" and set(tags.top_values[0]) == {"[0]", "[1]", "[2]"}


def test_a_frame_made_by_pandas_profiles_like_its_microsecond_twin():
    """Nanosecond and millisecond datetimes (pandas makes the former), with or
    without a zone, profile as the same moments in microseconds do; other types pandas and
    Polars make (categorical, int8, uint64, duration, decimal, list, all-null) profile too."""
    import decimal

    import pandas as pd

    n = 300
    made = pl.from_pandas(pd.DataFrame({
        "t": pd.date_range("2024-01-01", periods=n, freq="h").astype("datetime64[ns]"),
        "tz": pd.date_range("2024-01-01", periods=n, freq="D", tz="Europe/Paris")
        .astype("datetime64[ns, Europe/Paris]"),
        "c": pd.Categorical(["a", "b", "c"] * (n // 3)),
        "i8": (np.arange(n) % 100).astype("int8"), "u64": np.arange(n, dtype="uint64"),
        "dur": pd.to_timedelta(np.arange(n), unit="s"), "y": [0, 1] * (n // 2),
    })).with_columns(
        pl.col("t").dt.cast_time_unit("ms").alias("ms"),
        pl.Series("dec", [decimal.Decimal("1.5")] * n), pl.Series("lst", [[1, 2]] * n),
        pl.Series("nul", [None] * n),
    )
    assert made.schema["t"] == pl.Datetime("ns") and made.schema["tz"].time_unit == "ns"
    got = profile(made, source="s", target="y", task="classification")
    twin = profile(made.with_columns(pl.col("t", "tz", "ms").dt.cast_time_unit("us")),
                   source="s", target="y", task="classification")
    for name in ("t", "tz", "ms"):
        a, b = column(got, name), column(twin, name)
        assert a.kind == "datetime" and a.stats == b.stats and a.histogram == b.histogram
        assert sum(a.histogram[1]) == n
    assert column(got, "t").stats["min"] == datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    assert {c.name: c.kind for c in got.columns} == {
        "t": "datetime", "tz": "datetime", "c": "categorical", "i8": "numeric",
        "u64": "numeric", "dur": "numeric", "y": "numeric", "ms": "datetime", "dec": "numeric",
        "lst": "categorical", "nul": "categorical"}


def test_correlation_ratio_of_values_near_the_float_limit():
    """Groups that determine the values give 1 whatever their scale, without overflow."""
    import warnings

    import numpy as np

    from loopml.explore._target import correlation_ratio

    x = np.repeat([0, 1], 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert correlation_ratio(x, np.where(x == 0, 1.7e308, -1.7e308), 2) == 1.0
        assert correlation_ratio(x, np.full(200, 1e300), 2) == 0.0  # constant: nothing to explain
