"""``build_reference``: the training-time distributions drift is measured against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import polars as pl

from loopml.core.bins import quantile_edges, sorted_counts
from loopml.core.contract import NUMERIC_TYPES, Contract
from loopml.core.errors import MonitorError, unknown_name
from loopml.core.records import FeatureReference, Reference
from loopml.monitor._bins import (
    MAX_CATEGORIES,
    MAX_KNOWN,
    clean,
    fine_reference,
    in_threads,
    numeric_values,
    shares,
)

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
    sample_rows: int = 5000,
    seed: int = 0,
) -> Reference:
    """Reference distributions of ``columns`` of the training ``frame`` and of ``predictions``.

    Integer and float columns get quantile bins (``edges`` are the inner edges, deduplicated;
    bins are right-closed) with the share of rows per bin and a last share for missing values.
    Boolean, string and category columns keep their 20 most frequent values with shares, one
    "other" share and one missing share. Datetime and date columns are skipped: time only
    moves forward, so their distribution differs in every new window by construction; monitor
    derived columns (hour, weekday) instead.

    Numeric columns also keep 100 finer quantile bins with the mean of each, and their mean and
    standard deviation, for the Kolmogorov–Smirnov and Wasserstein statistics; categorical
    columns keep every value seen (up to 1,000) or the contract's allowed values, to count
    unseen categories. ``sample_rows`` rows of the monitored columns (drawn with ``seed``) are
    kept for the domain classifier (0 keeps none).

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
    wanted: list[tuple[str, str, tuple[str, ...] | None]] = []
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
        if column_type not in SKIPPED_TYPES:
            kind = "numeric" if column_type in NUMERIC_TYPES else "categorical"
            wanted.append((name, kind, contract.column(name).allowed))

    def describe(item: tuple[str, str, tuple[str, ...] | None]) -> FeatureReference:
        name, kind, allowed = item
        feature = _describe(frame[name], name, kind, bins)
        if kind == "categorical" and allowed:
            feature = replace(feature, known=tuple(sorted({*allowed, *feature.known})))
        return feature

    features = in_threads(describe, wanted)
    prediction = None
    if predictions is not None:
        if not isinstance(predictions, pl.Series):
            predictions = pl.Series(predictions)
        if predictions.dtype.is_float():
            prediction = _describe(predictions, SCORE, "numeric", bins)
        else:
            prediction = _describe(predictions, PREDICTION, "categorical", bins)
    sample = None
    if sample_rows > 0 and features:
        kept = frame.select(f.name for f in features)
        sample = kept.sample(n=min(sample_rows, kept.height), seed=seed) if (
            kept.height > sample_rows) else kept  # fmt: skip
    return Reference(
        features=tuple(features), prediction=prediction, rows=frame.height, sample=sample
    )


def _describe(series: pl.Series, name: str, kind: str, bins: int) -> FeatureReference:
    if kind == "numeric":
        try:
            values = numeric_values(series)
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
            raise MonitorError(
                f"Column {name!r} is {series.dtype} in the reference frame, which the "
                "contract says is numeric.",
                hint="Build the reference from the clean (contract-typed) training frame.",
            ) from exc
        values = np.sort(values)
        edges = quantile_edges(values, bins, presorted=True)
        counts = np.append(sorted_counts(values, edges), series.len() - values.size)
        return FeatureReference(
            name=name, kind="numeric", edges=tuple(float(v) for v in edges),
            shares=shares(counts), rows=series.len(),
            **fine_reference(values),  # type: ignore[arg-type]
        )  # fmt: skip
    text = clean(series).drop_nulls().cast(pl.String)
    found = text.value_counts().sort(["count", text.name], descending=[True, False])
    categories = tuple(found[text.name].head(MAX_CATEGORIES).to_list())
    kept = found["count"].head(MAX_CATEGORIES).to_list()
    counts = [*kept, found["count"].sum() - sum(kept), series.len() - text.len()]
    known = tuple(sorted(found[text.name].to_list())) if found.height <= MAX_KNOWN else ()
    return FeatureReference(name=name, kind="categorical", categories=categories,
                            known=known, shares=shares(counts), rows=series.len())  # fmt: skip
