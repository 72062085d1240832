"""Anomalous rows: an isolation forest (``_iforest``) on a bounded sample.

Numeric and boolean columns are scored as they are (missing values as the median, plus a
missing flag); a categorical column as the share of rows having its value, so rare
categories stand out. The forest is small (100 trees of 256 rows): its cost does not grow
with the table.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from loopml.core.records import Anomalies
from loopml.explore._columns import sample_rows
from loopml.explore._iforest import isolation_scores
from loopml.explore._sections import cell_text

MAX_ROWS = 10_000
MAX_COLUMNS = 40
TOP = 10
SHOWN_COLUMNS = 16

def anomalies(
    sample: pl.DataFrame, kinds: dict[str, str], *, seed: int = 0, max_rows: int = MAX_ROWS
) -> Anomalies | None:
    """The ``TOP`` most anomalous rows of at most ``max_rows`` sampled rows, or None when
    fewer than 20 rows or no usable column."""
    if sample.height > max_rows:
        sample = sample_rows(sample, max_rows, seed)
    if sample.height < 20:
        return None
    matrix, used = _matrix(sample, kinds)
    if not used:
        return None
    scores = isolation_scores(matrix, trees=100, max_samples=256, seed=seed)
    flagged = int((scores > 0.5).sum())  # easier to isolate than an average row
    top = np.argsort(-scores, kind="stable")[:TOP]
    shown = list(sample.columns[:SHOWN_COLUMNS])
    rows = sample.select(shown)[top.tolist()]
    return Anomalies(
        sampled_rows=sample.height,
        columns=tuple(used),
        flagged=flagged,
        top_columns=tuple(shown),
        top_rows=tuple(tuple(cell_text(v) for v in row) for row in rows.iter_rows()),
        top_scores=tuple(round(float(scores[i]), 4) for i in top),
    )


def _matrix(sample: pl.DataFrame, kinds: dict[str, str]) -> tuple[np.ndarray, list[str]]:
    """One float column per usable column (and one flag per column with missing values)."""
    exprs, used = [], []
    for name, kind in kinds.items():
        if len(used) >= MAX_COLUMNS:
            break
        col = pl.col(name)
        if kind in ("numeric", "boolean"):
            x = col.cast(pl.Float64)
            exprs.append(x.fill_null(x.median()).fill_null(0.0).alias(name))
        elif kind == "datetime":
            x = col.dt.epoch("s").cast(pl.Float64)
            exprs.append(x.fill_null(x.median()).fill_null(0.0).alias(name))
        elif kind == "categorical":
            share = pl.len().over(col).cast(pl.Float64) / pl.len()
            exprs.append(share.alias(name))
        else:
            continue
        used.append(name)
        if sample[name].null_count():
            exprs.append(col.is_null().cast(pl.Float64).alias(f"{name}\0missing"))
    if not exprs:
        return np.empty((sample.height, 0)), []
    table = sample.select(exprs)
    matrix = np.clip(table.to_numpy(), -1e30, 1e30)  # no infinity: a split needs a span
    varying = matrix.std(axis=0) > 0
    names = [n for n in used if varying[table.columns.index(n)]]
    return matrix[:, varying], names
