"""Trends by part: the rows, target and numeric means per period of the time column that
``trends`` computes on a whole frame, counted part by part as sums and counts per period
(``count_trends``), added up (``merge_trend_counts``) and divided at the end
(``finish_trends``), on a period fixed from the merged summary (``plan_trends``).

>>> import polars as pl
>>> from datetime import datetime
>>> from loopml.explore._summary import merge, summarize
>>> frame = pl.DataFrame({"t": [datetime(2024, 1, d) for d in (1, 2, 3, 4)],
...                       "x": [1.0, 2.0, 3.0, 5.0]})
>>> plan = plan_trends(merge(summarize(frame)), target=None, task="clustering")
>>> counts = merge_trend_counts(count_trends(frame[:2], plan), count_trends(frame[2:], plan))
>>> finish_trends(counts, plan).means
(('x', (1.0, 2.0, 3.0, 5.0)),)
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from loopml.explore._sections import MAX_TREND_COLUMNS, _floats, trend_period
from loopml.explore._target import class_counts

if TYPE_CHECKING:
    from loopml.core.records import Trends
    from loopml.explore._summary import TableSummary


def plan_trends(summary: TableSummary, *, target: str | None, task: str,
                positive_label: Any = None, time_column: str | None = None
                ) -> dict[str, Any] | None:
    """What ``profile`` shows trends of, chosen from the merged summary as it chooses from
    the whole frame: the time column (default: the first datetime column not the target), its
    period, the varied numeric columns and the target's shown class or value; None without a
    time column or with a single moment."""
    kinds, stats = summary.finished()
    if time_column is None:
        found = [n for n, k in kinds.items() if k == "datetime" and n != target]
        if not found:
            return None
        time_column = found[0]
    s = stats.get(time_column, {})
    if "min" not in s or s["min"] == s["max"]:
        return None
    every = trend_period(timedelta(0), timedelta(seconds=s["max"] - s["min"]))
    varied = [n for n in kinds
              if stats[n]["distinct"] - (1 if stats[n]["nulls"] else 0) > 1]
    numeric = [n for n in varied if kinds[n] == "numeric" and stats[n]["count"]
               and n != target and n != time_column][:MAX_TREND_COLUMNS]
    shown: tuple[str, Any] | None = None
    if target is not None and task != "clustering" and target in kinds:
        counts = summary.columns[target].counts
        if task == "classification" and counts is not None and counts.height:
            labels, _, _, index = class_counts(counts, positive_label)
            shown = ("class", labels[index]) if index >= 0 else None
        elif task == "regression" and kinds[target] == "numeric":
            shown = ("value", None)
    return {"time_column": time_column, "every": every, "numeric": numeric,
            "target": target, "shown": shown}


def count_trends(frame: pl.DataFrame, plan: dict[str, Any]) -> pl.DataFrame:
    """One part's rows, and sums and counts of the target and each numeric column, per
    period."""
    from loopml.explore._columns import prepare

    time_column, numeric, target = plan["time_column"], plan["numeric"], plan["target"]
    names = [time_column, *numeric, *([target] if plan["shown"] is not None else [])]
    data = prepare(frame.select(list(dict.fromkeys(names))))
    t = data[time_column]
    if t.dtype == pl.Date:
        t = t.cast(pl.Datetime("us"))
    columns = [t.dt.truncate(plan["every"]).alias("\0t")]
    if plan["shown"] is not None:
        kind, shown = plan["shown"]
        y = pl.col(target)
        columns.append((y.cast(pl.String) == shown if kind == "class" else y)
                       .cast(pl.Float64).alias("\0y"))
    columns += [pl.col(n).cast(pl.Float64) for n in numeric]
    keyed = data.select(columns).drop_nulls("\0t")
    value_columns = [c for c in keyed.columns if c != "\0t"]
    aggs = [pl.len().cast(pl.Int64).alias("\0rows")]
    for c in value_columns:
        aggs += [pl.col(c).sum().alias(f"{c}\0sum"), pl.col(c).count().cast(pl.Int64)
                 .alias(f"{c}\0n")]
    return keyed.group_by("\0t").agg(aggs)


def merge_trend_counts(*parts: pl.DataFrame) -> pl.DataFrame:
    both = pl.concat(list(parts))
    return both.group_by("\0t").agg(pl.exclude("\0t").sum())


def finish_trends(counts: pl.DataFrame, plan: dict[str, Any]) -> Trends | None:
    """The ``Trends`` record ``trends`` gives on the whole frame."""
    from loopml.core.records import Trends

    per = counts.sort("\0t")
    if per.height < 2:
        return None

    def mean(c: str) -> pl.Series:
        n = per[f"{c}\0n"]
        return (per[f"{c}\0sum"] / n.cast(pl.Float64)).set(n == 0, None)  # type: ignore[arg-type]

    every = plan["every"]
    short = every.endswith(("d", "w", "mo", "y"))
    labels = tuple(v.strftime("%Y-%m-%d" if short else "%Y-%m-%d %H:%M") for v in per["\0t"])
    return Trends(
        time_column=plan["time_column"],
        period=every,
        labels=labels,
        rows=tuple(int(v) for v in per["\0rows"]),
        target=None if plan["shown"] is None else _floats(mean("\0y")),
        means=tuple((n, _floats(mean(n))) for n in plan["numeric"]),
    )
