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
    given_ids = None if ids is None else list(ids)
    positions = range(features.height) if records is None else records.to_list()
    key_rows = [
        {"_request_id": request_id, "_record": i, "_model_version": version,
         "_predicted_at": now}
        for i in positions
    ]  # fmt: skip
    keys = pl.from_dicts(key_rows, schema=_log_id_schema())
    if given_ids is not None:
        text = [None if v is None else str(v) for v in given_ids]
        keys = keys.with_columns(pl.Series("_id", text, dtype=pl.String))
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
