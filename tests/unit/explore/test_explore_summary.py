"""A profile from part summaries: the statistics of 166,158 flights summarized in parts and
merged equal those ``profile`` computes on the whole frame, and the sketches beyond their
exact range stay within the errors they state."""

from __future__ import annotations

import doctest

import numpy as np
import polars as pl
import pytest

import loopml.explore._sketch
import loopml.explore._summary
from loopml.explore import count_bins, merge, merge_bins, plan_bins, profile, summarize
from loopml.explore._sketch import HLL_ERROR

COUNTS = ("count", "nulls", "distinct")


def _by_parts(frame: pl.DataFrame, rows: int):
    parts = list(frame.iter_slices(rows))
    summary = merge(*(summarize(p) for p in parts))
    plans = plan_bins(summary)
    summary.bins = merge_bins(*(count_bins(p, plans) for p in parts))
    return summary


@pytest.fixture(scope="module")
def merged_profile(half_year: pl.DataFrame):
    summary = _by_parts(half_year, 25_000)
    return profile(half_year, source="flights", target="late", task="classification",
                   summary=summary)


def test_modules_doctests() -> None:
    for module in (loopml.explore._sketch, loopml.explore._summary):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_a_profile_from_merged_parts_equals_the_whole_frame_profile(
    merged_profile, late_profile, half_year
) -> None:
    """Counts, moments, extremes, histograms, top values and class counts are the same;
    quantiles of columns beyond 65,536 values are values within the sketch's rank error."""
    assert merged_profile.rows == late_profile.rows == half_year.height
    assert merged_profile.target_distribution == late_profile.target_distribution
    assert merged_profile.positive_label == late_profile.positive_label
    for mine, theirs in zip(merged_profile.columns, late_profile.columns, strict=True):
        assert (mine.name, mine.kind) == (theirs.name, theirs.kind)
        assert (mine.count, mine.nulls, mine.distinct) == (theirs.count, theirs.nulls,
                                                           theirs.distinct), mine.name
        assert mine.histogram == theirs.histogram, mine.name
        if mine.top_values is not None:  # ties may be ordered otherwise
            assert sorted(zip(*mine.top_values, strict=True), key=lambda t: -t[1])[:10] == (
                sorted(zip(*theirs.top_values, strict=True), key=lambda t: -t[1])[:10])
            assert sorted(mine.top_values[1]) == sorted(theirs.top_values[1]), mine.name
        assert mine.stats.keys() - {"quantile_rank_error"} == theirs.stats.keys(), mine.name
        for key, value in theirs.stats.items():
            if key in ("q25", "median", "q75"):
                continue
            assert mine.stats[key] == pytest.approx(value, rel=1e-9, abs=1e-9), (mine.name, key)
        assert mine.warnings == theirs.warnings, mine.name
    dep = next(c for c in merged_profile.columns if c.name == "dep_delay")
    values = half_year["dep_delay"].drop_nulls().cast(pl.Float64).to_numpy()
    sketch = summarize(half_year.select("dep_delay")).columns["dep_delay"].sketch
    assert 0 < sketch.rank_error < 0.01  # beyond the exact range: sketched
    assert 0 < dep.stats["quantile_rank_error"] < 0.01  # and the profile says so
    error = _by_parts(half_year.select("dep_delay"), 25_000).columns["dep_delay"].sketch.error
    for key, q in (("q25", 0.25), ("median", 0.5), ("q75", 0.75)):
        v = dep.stats[key]
        assert np.sum(values < v) < q * values.size + error
        assert np.sum(values <= v) >= q * values.size - error


def test_a_summary_profile_names_the_sections_it_sampled(half_year) -> None:
    """Given a sample of the rows, the row-wise sections say they used it; the column
    statistics still count every row."""
    summary = _by_parts(half_year, 40_000)
    sample = half_year.sample(20_000, seed=1)
    p = profile(sample, source="flights", target="late", task="classification",
                summary=summary)
    assert p.rows == half_year.height
    sampled = dict(p.sampling)
    assert sampled["missingness patterns, duplicates, leakage and label checks, trends"] == (
        20_000)
    assert sum(next(c for c in p.columns if c.name == "hour").histogram[1]) == (
        half_year["hour"].count())


def test_many_distinct_values_are_counted_by_sketch_within_its_error() -> None:
    """Beyond 10,000 distinct values, distinct counts are estimates within HLL_ERROR and
    the frequent values' counts are under the true ones by at most the stated error."""
    rng = np.random.default_rng(0)
    ids = rng.permutation(150_000)
    frequent, rare = rng.zipf(1.3, 150_000), 10**7 + np.arange(150_000)  # half seen once
    words = [f"w{int(i)}" for i in np.where(rng.random(150_000) < 0.5, frequent, rare)]
    frame = pl.DataFrame({"id": ids, "word": words})
    summary = merge(*(summarize(p) for p in frame.iter_slices(20_000)))
    _, stats = summary.finished()
    assert abs(stats["id"]["distinct"] - 150_000) <= HLL_ERROR * 150_000
    assert stats["id"]["distinct_error"] == HLL_ERROR
    # parts of fewer distinct values than the cap, counted exactly, overflow when merged
    small = merge(*(summarize(p) for p in frame.select("id").iter_slices(8_000)))
    assert abs(small.finished()[1]["id"]["distinct"] - 150_000) <= HLL_ERROR * 150_000
    assert small.columns["id"].counts is None
    true_words = frame["word"].n_unique()
    assert abs(stats["word"]["distinct"] - true_words) <= HLL_ERROR * true_words
    word = summary.columns["word"]
    assert not word.complete and word.counts.height <= 1_000
    truth = dict(frame["word"].value_counts().iter_rows())
    for value, count in word.counts.head(20).iter_rows():
        assert truth[value] - word.count_error <= count <= truth[value]
    assert word.counts.row(0)[0] == frame["word"].mode()[0]


def test_trends_counted_by_part_equal_the_whole_frame_trends(late_profile, half_year) -> None:
    """Rows, the positive class's rate and numeric means per period, summed by part, are the
    trends of the whole frame; a profile given them shows them and samples the rest."""
    from loopml.explore import count_trends, finish_trends, merge_trend_counts, plan_trends

    parts = list(half_year.iter_slices(30_000))
    summary = _by_parts(half_year, 30_000)
    plan = plan_trends(summary, target="late", task="classification")
    counts = merge_trend_counts(*(count_trends(p, plan) for p in parts))
    by_parts = finish_trends(counts, plan)
    assert by_parts is not None and late_profile.trends is not None
    assert (by_parts.time_column, by_parts.period, by_parts.labels, by_parts.rows) == (
        late_profile.trends.time_column, late_profile.trends.period,
        late_profile.trends.labels, late_profile.trends.rows)
    assert by_parts.target == pytest.approx(late_profile.trends.target, abs=2e-6)
    assert [n for n, _ in by_parts.means] == [n for n, _ in late_profile.trends.means]
    for (_, mine), (_, theirs) in zip(by_parts.means, late_profile.trends.means, strict=True):
        assert mine == pytest.approx(theirs, abs=2e-6, rel=1e-6)
    summary.trends, summary.counted_trends = by_parts, True
    p = profile(half_year.sample(20_000, seed=2), source="flights", target="late",
                task="classification", summary=summary)
    assert p.trends == by_parts
    assert "missingness patterns, duplicates, leakage and label checks" in dict(p.sampling)


def _held_bytes(summary) -> int:
    """The bytes a summary keeps alive: every array its sketches hold (a NumPy view keeps
    its whole base) and every Arrow buffer its value counts point into."""
    total = 0
    for col in summary.columns.values():
        for level in col.sketch.levels if col.sketch is not None else ():
            total += (level.base if level.base is not None else level).nbytes
        if col.counts is not None:
            table = col.counts.to_arrow(compat_level=pl.CompatLevel.newest())
            total += sum(b.size for c in table.columns for chunk in c.chunks
                         for b in chunk.buffers() if b is not None)
    return total


def test_a_part_summary_keeps_its_statistics_not_the_part() -> None:
    """A table is summarized part by part and the summaries merged, so each summary outlives
    its part: what it keeps (quantile sketches, frequent values) must be in memory of its own.
    A sketch level that was a view of the sorted column, or frequent values that still point
    into the column's text, kept every part read in memory until the end (2.1 GB instead of
    0.75 GB for the profile of 10 million rows)."""
    rng = np.random.default_rng(0)
    n = 300_000  # beyond the sketch's exact values and the exact distinct values
    part = pl.DataFrame({
        "x": rng.normal(size=n),
        "note": [f"a free-text note that is longer than a view's inline bytes {i}"
                 for i in rng.integers(0, 100_000, n)],
        "city": [f"a city with a long enough name number {i}" for i in rng.integers(0, 50, n)],
    })
    column_bytes = part.estimated_size()
    summary = summarize(part)
    assert summary.columns["x"].sketch.compactions  # the sketch compacted
    assert not summary.columns["note"].complete  # the note's counts were cut to the frequent
    assert _held_bytes(summary) < column_bytes * 0.05
    assert _held_bytes(merge(summary, summarize(part))) < column_bytes * 0.05
