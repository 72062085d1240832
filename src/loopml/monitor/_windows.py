"""``split_windows``: the prediction log cut into consecutive windows."""

from __future__ import annotations

import polars as pl

from loopml.core.config import window_spec
from loopml.core.errors import ConfigError, MonitorError

TIME_COLUMN = "_predicted_at"


def split_windows(log: pl.DataFrame, spec: str) -> list[pl.DataFrame]:
    """Consecutive windows of the prediction ``log`` ordered by ``_predicted_at``.

    ``spec`` "7d" or "12h" cuts calendar-aligned time windows of that length (UTC, aligned to
    the epoch, so "1d" windows are days and every run cuts the same windows); "5000rows" cuts
    consecutive runs of 5,000 rows (the last may be shorter). Empty windows are omitted; rows
    without a ``_predicted_at`` are left out of time windows. Each window keeps all columns.

    >>> from datetime import datetime, timedelta, UTC
    >>> t0 = datetime(2024, 1, 1, 20, tzinfo=UTC)
    >>> log = pl.DataFrame({"_predicted_at": [t0 + timedelta(hours=3 * i) for i in range(6)],
    ...                     "x": range(6)})
    >>> [w["x"].to_list() for w in split_windows(log, "1d")]
    [[0, 1], [2, 3, 4, 5]]
    >>> [w.height for w in split_windows(log, "4rows")]
    [4, 2]
    """
    try:
        kind, size = window_spec(spec)
    except ConfigError as exc:
        raise MonitorError(
            f"{spec!r} is not a monitoring window.",
            hint="Write a duration (12h, 1d, 7d) or a row count (5000rows) in "
            "monitoring.window.",
        ) from exc
    has_time = TIME_COLUMN in log.columns
    if has_time and not log[TIME_COLUMN].dtype.is_temporal():
        raise MonitorError(
            f"Column {TIME_COLUMN!r} of the log is {log[TIME_COLUMN].dtype}, not a time.",
            hint="Pass the prediction log as the lake stores it (datetime[us, UTC]).",
        )
    if has_time:
        log = log.sort(TIME_COLUMN, maintain_order=True, nulls_last=True)
    if kind == "rows":
        n = int(size)
        return [log.slice(i, n) for i in range(0, log.height, n)]
    if not has_time:
        raise MonitorError(
            f"Time windows ({spec!r}) need a {TIME_COLUMN!r} column; the log has "
            f"{', '.join(map(repr, log.columns[:20]))}.",
            hint="Pass the prediction log with _predicted_at, or use a row window like "
            "'5000rows'.",
        )
    width = int(size * 1_000_000)
    key = "__window"
    keyed = log.filter(pl.col(TIME_COLUMN).is_not_null()).with_columns(
        (pl.col(TIME_COLUMN).dt.epoch("us") // width).alias(key)
    )
    return [w.drop(key) for w in keyed.partition_by(key, maintain_order=True)]
