"""The prediction log's row layout: one row per scored record, keyed by request and record.

The server, shadow scoring and batch scoring all build their log rows here, so the feedback
join on (``_request_id``, ``_record``) and the monitor's windows on ``_predicted_at`` read one
layout.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl


def log_rows(
    features: pl.DataFrame,
    outputs: Sequence[pl.Series],
    *,
    request_id: str,
    version: int,
    records: pl.Series | None = None,
    ids: Sequence[Any] | pl.Series | None = None,
    shadow: bool = False,
) -> pl.DataFrame:
    """The log rows of one request or scored file: ``_request_id``, ``_record`` (the
    row's position, or ``records``), ``_model_version``, ``_predicted_at``, ``_id`` (the
    ``problem.id_column`` value as text, only when ``ids`` is given), the features, the
    outputs (``_prediction``, ``_score``) and ``_shadow`` (True, only for rows a shadow
    model scored).

    >>> import polars as pl
    >>> rows = log_rows(pl.DataFrame({"x": [1.0]}), [pl.Series("_score", [0.5])],
    ...                  request_id="r1", version=2, ids=[17])
    >>> rows.columns
    ['_request_id', '_record', '_model_version', '_predicted_at', '_id', 'x', '_score']
    >>> rows["_id"].to_list()
    ['17']
    """
    from datetime import UTC, datetime

    import polars as pl

    now = datetime.now(UTC)
    n = features.height
    schema = _log_id_schema()
    # columns, not a dict per row: a batch scoring logs millions of rows at once
    keys = pl.DataFrame({
        "_request_id": pl.repeat(request_id, n, dtype=pl.String, eager=True),
        "_record": pl.int_range(0, n, dtype=pl.Int64, eager=True) if records is None
        else records.cast(pl.Int64),
        "_model_version": pl.repeat(version, n, dtype=pl.Int64, eager=True),
        "_predicted_at": pl.repeat(now, n, eager=True).cast(schema["_predicted_at"]),
    })
    if ids is not None:
        if isinstance(ids, pl.Series) and ids.dtype == pl.String:
            text = ids.alias("_id")
        else:
            text = pl.Series("_id", [None if v is None else str(v) for v in ids],
                             dtype=pl.String)
        keys = keys.with_columns(text)
    out = keys.hstack([*features.get_columns(), *outputs])
    if shadow:
        out = out.with_columns(pl.lit(True).alias("_shadow"))
    return out


@functools.cache
def _log_id_schema() -> pl.Schema:
    import polars as pl

    return pl.Schema({
        "_request_id": pl.String,
        "_record": pl.Int64,
        "_model_version": pl.Int64,
        "_predicted_at": pl.Datetime("us", "UTC"),
    })
