"""Profile a clean table: distributions, missingness, target relationships, correlations,
warnings, label quality (``check_labels``) and leakage suspects (``find_leaks``), as a
``Profile`` record that ``loopml.reports`` renders; ``summarize`` and ``merge`` compute the
column statistics of a table part by part, for a profile of more rows than fit in memory.

>>> import polars as pl
>>> p = profile(pl.DataFrame({"a": [1, 2, 3, 4]}), source="demo", target=None, task="clustering")
>>> p.rows, p.columns[0].stats["mean"]
(4, 2.5)
"""

from loopml.explore._labels import check_labels
from loopml.explore._leakage import find_leaks
from loopml.explore._profile import profile
from loopml.explore._sketch import DistinctSketch, QuantileSketch
from loopml.explore._summary import (
    ColumnSummary,
    TableSummary,
    count_bins,
    merge,
    merge_bins,
    plan_bins,
    summarize,
)
from loopml.explore._trendparts import (
    count_trends,
    finish_trends,
    merge_trend_counts,
    plan_trends,
)

__all__ = [
    "ColumnSummary",
    "DistinctSketch",
    "QuantileSketch",
    "TableSummary",
    "check_labels",
    "count_bins",
    "count_trends",
    "finish_trends",
    "merge_trend_counts",
    "plan_trends",
    "find_leaks",
    "merge",
    "merge_bins",
    "plan_bins",
    "profile",
    "summarize",
]
