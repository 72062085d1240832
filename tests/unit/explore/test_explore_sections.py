"""Known answers for the table-wide sections: missingness, duplicates, trends, the pairwise
matrices and anomalies."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from loopml.core.errors import TargetError
from loopml.core.records import QuarantineSummary
from loopml.explore import profile
from loopml.explore._pairs import _code, cramers_v
from loopml.explore._sections import duplicates, missing_patterns, trends


def test_missing_combinations_are_counted_per_row_and_sorted():
    """Each row's set of missing columns is counted; the most common set comes first."""
    frame = pl.DataFrame({
        "a": [None, None, None, 1, 1, 1],
        "b": [None, None, 1, 1, 1, None],
        "c": [1, 2, 3, 4, 5, 6],
    })  # fmt: skip
    found = missing_patterns(frame)
    assert found.columns == ("a", "b")  # c is never missing
    assert dict(found.combinations) == {("a", "b"): 2, ("a",): 1, (): 2, ("b",): 1}
    assert found.combinations[0][1] == 2


def test_nullity_correlation_is_one_for_columns_missing_together_and_minus_one_apart():
    """Columns always missing on the same rows correlate 1; on complementary rows, -1."""
    gap = [None, 1, None, 1, None, 1]
    frame = pl.DataFrame({"a": gap, "b": gap, "c": [1, None, 1, None, 1, None]})
    names, matrix = missing_patterns(frame).nullity
    m = np.array(matrix)
    i, j, k = names.index("a"), names.index("b"), names.index("c")
    assert m[i, j] == pytest.approx(1.0) and m[i, k] == pytest.approx(-1.0)
    assert missing_patterns(pl.DataFrame({"x": [1, 2]})) is None


def test_duplicates_count_extra_copies_and_show_the_most_repeated():
    """Three copies of one row and two of another: 3 extra rows in 2 groups."""
    frame = pl.DataFrame({
        "x": [1, 1, 1, 2, 2, 3, None, None],
        "y": ["a", "a", "a", "b", "b", "c", "d", "e"],
    })  # fmt: skip
    found = duplicates(frame)
    assert (found.rows, found.groups) == (3, 2)
    assert found.examples == ((("1", "a"), 3), (("2", "b"), 2))
    assert duplicates(frame.unique(maintain_order=True)).rows == 0


def test_trends_count_rows_and_average_the_target_per_period():
    """Daily rows over 35 days are grouped by week, with the target rate per week."""
    start = datetime(2024, 1, 1)  # a Monday: weeks start on it
    days = [start + timedelta(days=i) for i in range(35)]
    frame = pl.DataFrame({
        "t": days, "y": [1.0 if i < 7 else 0.0 for i in range(35)],
        "x": [float(i // 7) for i in range(35)],
    })  # fmt: skip
    found = trends(frame, "t", numeric=["x"], target_expr=pl.col("y"))
    assert found.period == "1d"  # 35 days fit in 60 daily periods
    assert len(found.labels) == 35 and set(found.rows) == {1}
    wide = pl.DataFrame({"t": [start + timedelta(days=i) for i in range(140)],
                         "x": [float(i // 7) for i in range(140)]})
    weekly = trends(wide, "t", numeric=["x"])
    assert weekly.period == "1w" and weekly.rows == (7,) * 20
    assert weekly.labels[0] == "2024-01-01" and dict(weekly.means)["x"][:3] == (0.0, 1.0, 2.0)
    assert weekly.target is None


def test_cramers_v_is_zero_for_independent_and_one_for_identical_columns():
    """A balanced cross of two columns is independent; a column with itself is determined."""
    a = pl.Series("a", ["p", "q", "r"] * 400)
    b = pl.Series("b", ["u"] * 600 + ["v"] * 600)  # every (a, b) pair equally often
    independent = cramers_v(_code(a), _code(b.sample(fraction=1.0, shuffle=True, seed=0)))
    assert cramers_v(_code(a), _code(a)) == pytest.approx(1.0)
    assert independent < 0.08
    crossed = pl.Series("b", (["u"] * 3 + ["v"] * 3) * 200)
    assert cramers_v(_code(a), _code(crossed)) == pytest.approx(0.0, abs=1e-9)


def test_profile_matrices_find_a_monotone_pair_and_a_determined_number():
    """Spearman sees a monotone curve as 1; a number set by a category has eta 1; Cramér's
    V of a column and its relabelled twin is 1."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 5, 2000)
    group = rng.choice(["a", "b", "c"], 2000)
    frame = pl.DataFrame({
        "x": x, "curve": np.exp(x), "noise": rng.normal(size=2000), "g": group,
        "twin": np.char.add("z", group), "by_g": np.where(group == "a", 1.0,
                                                          np.where(group == "b", 5.0, 9.0)),
    })  # fmt: skip
    p = profile(frame, source="s", target=None, task="clustering")
    m = {mat.method: mat for mat in p.matrices}
    rank = m["spearman"]
    assert rank.values[rank.y.index("x")][rank.x.index("curve")] == pytest.approx(1.0)
    assert abs(rank.values[rank.y.index("x")][rank.x.index("noise")]) < 0.1
    v = m["cramers_v"]
    assert v.values[v.y.index("g")][v.x.index("twin")] == pytest.approx(1.0, abs=1e-3)
    eta = m["correlation_ratio"]
    assert eta.values[eta.y.index("g")][eta.x.index("by_g")] == pytest.approx(1.0, abs=1e-3)
    assert eta.values[eta.y.index("g")][eta.x.index("noise")] < 0.1


def test_anomalies_put_the_planted_outlier_first():
    """One row far from a tight cloud is the most anomalous row."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, 500), rng.normal(0, 1, 500)
    x[123], y[123] = 40.0, -40.0
    frame = pl.DataFrame({"id": np.arange(500), "x": x, "y": y})
    found = profile(frame, source="s", target=None, task="clustering").anomalies
    assert found.sampled_rows == 500 and found.top_rows[0][0] == "123"
    assert found.top_scores[0] == max(found.top_scores) and 0 < found.flagged < 500


def test_time_column_trend_follows_the_positive_class_and_sampling_is_named(half_year):
    """Flights per week with the late share; sections that sampled say how many rows."""
    p = profile(half_year, source="flights", target="late", task="classification",
                max_rows=20_000, time_column="time_hour")
    t = p.trends
    assert t.time_column == "time_hour" and t.period == "1w"
    assert sum(t.rows) == half_year.height
    late = half_year.filter(pl.col("time_hour").dt.truncate("1w")
                            == pl.col("time_hour").dt.truncate("1w").min())["late"].mean()
    assert t.target[0] == pytest.approx(late, abs=1e-6)
    assert dict(p.sampling)["anomalies"] == 10_000
    assert 20_000 in dict(p.sampling).values()


def test_quarantine_is_carried_and_a_bad_time_column_is_explained(half_year):
    """The quarantine summary goes into the profile; a wrong time column raises TargetError."""
    held = QuarantineSummary(table="quarantine/flights", version=2, rows=7,
                             by_reason=(("range", 7),))
    small = half_year.head(500)
    p = profile(small, source="f", target=None, task="clustering", quarantine=held)
    assert p.quarantine == held
    with pytest.raises(TargetError, match="Did you mean 'time_hour'"):
        profile(small, source="f", target=None, task="clustering", time_column="time_hr")
    with pytest.raises(TargetError, match="dates or datetimes") as info:
        profile(small, source="f", target=None, task="clustering", time_column="carrier")
    assert "problem.time_column" in info.value.hint
