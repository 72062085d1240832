"""Properties of the mergeable column statistics: a frame split anywhere into parts, each
part summarized and the summaries merged in any grouping, gives the statistics of the whole
frame (the exact ones equal, quantiles within the rank error their sketch states)."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.explore import QuantileSketch, count_bins, merge, merge_bins, plan_bins, summarize
from loopml.explore._columns import column_kind, prepare, scalar_stats

EXACT = ("count", "nulls", "distinct", "min", "max", "zeros", "negatives", "min_length",
         "max_length")


def _column(kind: str, rows: int, data: st.DataObject) -> pl.Series:
    def values(strategy):
        return data.draw(st.lists(st.one_of(st.none(), strategy), min_size=rows, max_size=rows))

    if kind == "int":
        return pl.Series(values(st.integers(-(10**6), 10**6)), dtype=pl.Int64)
    if kind == "float":
        finite = st.floats(-1e6, 1e6, allow_nan=False)
        return pl.Series(values(st.one_of(finite, st.just(math.nan), st.just(math.inf))),
                         dtype=pl.Float64)
    if kind == "bool":
        return pl.Series(values(st.booleans()), dtype=pl.Boolean)
    if kind == "text":
        return pl.Series(values(st.text("abcxyz", max_size=50)), dtype=pl.String)
    if kind == "categorical":
        return pl.Series(values(st.sampled_from(["a", "b", "c"])), dtype=pl.Categorical)
    if kind == "date":
        return pl.Series(values(st.dates(date(1990, 1, 1), date(2030, 1, 1))), dtype=pl.Date)
    moments = st.datetimes(datetime(2000, 1, 1), datetime(2001, 1, 1))
    return pl.Series(values(moments), dtype=pl.Datetime("us")).dt.replace_time_zone("UTC")


KINDS = ["int", "float", "bool", "text", "categorical", "date", "datetime"]


@st.composite
def split_frames(draw):
    """A frame of 1-60 rows and 1-5 columns of any kind, and cut points into parts."""
    data = draw(st.data())
    rows = draw(st.integers(1, 60))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=5))
    frame = pl.DataFrame({f"c{i}": _column(k, rows, data) for i, k in enumerate(kinds)})
    cuts = sorted(draw(st.lists(st.integers(0, rows), max_size=5)))
    bounds = [0, *cuts, rows]
    return frame, [frame[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        if key in EXACT:
            assert b[key] == value, key
        else:
            assert b[key] == pytest.approx(value, rel=1e-9, abs=1e-6), key


@given(split_frames(), st.randoms(use_true_random=False))
@settings(max_examples=150, deadline=None)
def test_merged_parts_equal_the_whole_frame(case, rng) -> None:
    """Statistics, value counts and histogram counts of the merged parts are the whole
    frame's, whatever the order the summaries merge in; and they are ``scalar_stats``'s."""
    frame, parts = case
    whole = summarize(frame)
    summaries = [summarize(p) for p in parts]
    left = merge(*summaries)
    while len(summaries) > 1:  # a random grouping of the same merges
        i = rng.randrange(len(summaries) - 1)
        summaries[i:i + 2] = [merge(summaries[i], summaries[i + 1])]
    kinds, stats = whole.finished()
    data = prepare(frame)
    assert kinds == {n: column_kind(data[n]) for n in frame.columns}
    direct = scalar_stats(data, kinds)
    for merged in (left, summaries[0]):
        assert merged.rows == frame.height
        merged_kinds, merged_stats = merged.finished()
        assert merged_kinds == kinds
        for name in frame.columns:
            _same(stats[name], merged_stats[name])
            _same(direct[name], merged_stats[name])
            counts, merged_counts = whole.columns[name].counts, merged.columns[name].counts
            assert merged_counts is not None and counts is not None
            assert merged_counts.to_dicts() == counts.to_dicts()
    plans = plan_bins(whole)
    by_parts = merge_bins(*(count_bins(p, plans) for p in parts))
    for name, counts in count_bins(frame, plans).items():
        if isinstance(counts, np.ndarray):
            assert by_parts[name].tolist() == counts.tolist()
        else:
            assert by_parts[name].sort("t").to_dicts() == counts.sort("t").to_dicts()


@given(st.lists(st.integers(-50, 50), min_size=1, max_size=400),
       st.lists(st.integers(0, 400), max_size=8), st.integers(2, 16))
@settings(max_examples=200, deadline=None)
def test_sketched_quantiles_are_within_the_stated_rank_error(values, cuts, k) -> None:
    """A sketch merged from any parts returns, for every q, a value whose rank in the data
    is within the sketch's own error bound of q * n."""
    x = np.asarray(values, dtype=float)
    bounds = [0, *sorted(c for c in cuts if c <= x.size), x.size]
    sketches = [QuantileSketch.of(x[a:b], k=k, exact=k)
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    merged = sketches[0]
    for s in sketches[1:]:
        merged = merged.merge(s)
    assert merged.n == x.size
    assert sum(level.size for level in merged.levels) <= x.size
    for q in (0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0):
        v = merged.quantile(q)
        if merged.error == 0:
            assert v == pytest.approx(float(np.quantile(x, q)))
            continue
        assert np.sum(x < v) < q * x.size + merged.error + 1e-9
        assert np.sum(x <= v) >= q * x.size - merged.error - 1e-9
