"""``build_reference``: the training-time distributions drift is measured against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import polars as pl

from loopml.core.contract import NUMERIC_TYPES, Contract
from loopml.core.errors import MonitorError, unknown_name
from loopml.core.records import FeatureReference, Reference
from loopml.monitor._bins import bin_counts, numeric_edges, shares, top_categories

SKIPPED_TYPES = frozenset({"datetime", "date"})
SCORE = "_score"
PREDICTION = "_prediction"


def build_reference(
    frame: pl.DataFrame,
    contract: Contract,
    *,
    columns: Sequence[str],
    predictions: pl.Series | None = None,
    bins: int = 10,
) -> Reference:
    """Reference distributions of ``columns`` of the training ``frame`` and of ``predictions``.

    Integer and float columns get quantile bins (``edges`` are the inner edges, deduplicated;
    bins are right-closed) with the share of rows per bin and a last share for missing values.
    Boolean, string and category columns keep their 20 most frequent values with shares, one
    "other" share and one missing share. Datetime and date columns are skipped: time only
    moves forward, so their distribution differs in every new window by construction; monitor
    derived columns (hour, weekday) instead.

    ``predictions`` is the model's output on held-out rows: float scores (the positive class's
    probability, or a regression's prediction) are binned like a numeric column and named
    ``_score``; anything else (labels, cluster ids) is categorical and named ``_prediction``.

    >>> import polars as pl
    >>> from loopml.core.contract import ColumnSpec, Contract
    >>> contract = Contract(source="s", columns=(ColumnSpec(name="x", type="float"),))
    >>> ref = build_reference(pl.DataFrame({"x": [1.0, 2.0, 3.0, None]}), contract,
    ...                       columns=["x"], bins=2)
    >>> ref.features[0].edges, ref.features[0].shares
    ((2.0,), (0.5, 0.25, 0.25))
    """
    if bins < 2:
        raise MonitorError(f"Reference bins must be at least 2; got {bins}.",
                           hint="Set monitoring.bins in loopml.yaml to 2 or more.")
    if frame.height == 0:
        raise MonitorError(
            "The reference frame has no rows, so there is nothing to compare windows with.",
            hint="Build the reference from the rows the model was trained or validated on.",
        )
    features = []
    for name in columns:
        if name not in contract:
            raise MonitorError(
                unknown_name("contract column", name, contract.names),
                hint="Monitor only the feature columns the model's contract names.",
            )
        if name not in frame.columns:
            raise MonitorError(
                f"Column {name!r} is in the contract but not in the reference frame "
                f"(which has {', '.join(frame.columns[:20])}).",
                hint="Build the reference from the training frame the model was fitted on.",
            )
        column_type = contract.column(name).type
        if column_type in SKIPPED_TYPES:
            continue
        kind = "numeric" if column_type in NUMERIC_TYPES else "categorical"
        features.append(_describe(frame[name], name, kind, bins))
    prediction = None
    if predictions is not None:
        if not isinstance(predictions, pl.Series):
            predictions = pl.Series(predictions)
        if predictions.dtype.is_float():
            prediction = _describe(predictions, SCORE, "numeric", bins)
        else:
            prediction = _describe(predictions, PREDICTION, "categorical", bins)
    return Reference(features=tuple(features), prediction=prediction, rows=frame.height)


def _describe(series: pl.Series, name: str, kind: str, bins: int) -> FeatureReference:
    if kind == "numeric":
        ref = FeatureReference(name=name, kind="numeric", edges=numeric_edges(series, bins))
    else:
        ref = FeatureReference(name=name, kind="categorical", categories=top_categories(series))
    return replace(ref, shares=shares(bin_counts(series, ref)), rows=series.len())
