"""``check_drift``: a window of the prediction log against the reference, feature by feature.

The Population Stability Index of a feature with reference shares r and current shares c
over the same bins (missing values are a bin of their own) is

    PSI = sum_i (c_i - r_i) * ln(c_i / r_i),   with r_i, c_i floored at EPSILON = 1e-4

so that a bin empty on one side adds a large but finite term. PSI is 0 for identical shares,
symmetric in r and c, and grows with the shift; 0.1 and 0.25 are the usual warn and alert
levels (``monitoring.warn_psi`` / ``monitoring.alert_psi``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import polars as pl

from loopml.core.config import MonitoringConfig
from loopml.core.errors import MonitorError
from loopml.core.records import DriftReport, FeatureDrift, FeatureReference, Reference, Status
from loopml.monitor._bins import bin_counts, bin_labels, shares
from loopml.monitor._reference import PREDICTION, SCORE

EPSILON = 1e-4
TIME_COLUMN = "_predicted_at"
_RANK: dict[str, int] = {"ok": 0, "warn": 1, "alert": 2}


def psi(
    reference: Sequence[float], current: Sequence[float], *, epsilon: float = EPSILON
) -> float:
    """Population Stability Index of two share vectors over the same bins.

    >>> round(psi([0.5, 0.5], [0.5, 0.5]), 6)
    0.0
    >>> round(psi([0.5, 0.5], [0.9, 0.1]), 4)  # 0.4 ln 1.8 + 0.4 ln 5
    0.8789
    """
    r = np.maximum(np.asarray(reference, dtype=float), epsilon)
    c = np.maximum(np.asarray(current, dtype=float), epsilon)
    if r.shape != c.shape:
        raise MonitorError(
            f"PSI needs shares over the same bins; got {r.size} reference and {c.size} "
            "current shares."
        )
    return float(np.sum((c - r) * np.log(c / r)))


def check_drift(
    reference: Reference,
    current: pl.DataFrame,
    *,
    model: str,
    version: int,
    config: MonitoringConfig,
) -> DriftReport:
    """Compare a window of the prediction log (feature columns, ``_prediction``/``_score``,
    ``_predicted_at``) with the model's reference: PSI and status per feature and for the
    prediction, overall status = the worst, window = first and last ``_predicted_at``.

    A float reference prediction is compared with the log's ``_score``; when that column is
    empty (a regression logs its value as ``_prediction``) the numeric ``_prediction`` is used.

    >>> import polars as pl
    >>> from loopml.core.config import MonitoringConfig
    >>> from loopml.core.contract import ColumnSpec, Contract
    >>> from loopml.monitor import build_reference
    >>> contract = Contract(source="s", columns=(ColumnSpec(name="x", type="float"),))
    >>> ref = build_reference(pl.DataFrame({"x": [float(i % 10) for i in range(1000)]}),
    ...                       contract, columns=["x"])
    >>> window = pl.DataFrame({"x": [float(i % 10) + 5 for i in range(200)]})
    >>> report = check_drift(ref, window, model="m", version=1, config=MonitoringConfig())
    >>> report.status, report.features[0].status
    ('alert', 'alert')
    """
    if config.warn_psi > config.alert_psi:
        raise MonitorError(
            f"monitoring.warn_psi ({config.warn_psi}) is above alert_psi ({config.alert_psi}).",
            hint="Set warn_psi below alert_psi in loopml.yaml, e.g. 0.1 and 0.25.",
        )
    if current.height < config.min_rows:
        raise MonitorError(
            f"The window has {current.height} prediction rows; drift needs at least "
            f"{config.min_rows}.",
            hint="Send more traffic to the model, widen the window, or lower "
            "monitoring.min_rows in loopml.yaml.",
        )
    missing = [f.name for f in reference.features if f.name not in current.columns]
    if missing:
        raise MonitorError(
            f"The window lacks the monitored feature column(s) {', '.join(map(repr, missing))}; "
            f"it has {', '.join(map(repr, current.columns[:30]))}.",
            hint="Check that the prediction log stores every feature the model was trained on.",
        )
    features = tuple(
        _drift(ref, _counts(current, ref.name, ref), config) for ref in reference.features
    )
    prediction = None
    if reference.prediction is not None:
        column = _prediction_column(reference.prediction, current)
        prediction = _drift(reference.prediction, _counts(current, column, reference.prediction),
                            config)  # fmt: skip
    statuses = [f.status for f in features] + ([prediction.status] if prediction else [])
    start, end = _window(current)
    return DriftReport(
        model=model,
        version=version,
        reference_rows=reference.rows,
        current_rows=current.height,
        window_start=start,
        window_end=end,
        features=features,
        prediction=prediction,
        status=max(statuses, key=_RANK.__getitem__, default="ok"),
        thresholds={"warn_psi": config.warn_psi, "alert_psi": config.alert_psi},
    )


def status_of(value: float, config: MonitoringConfig) -> Status:
    """alert at or above ``alert_psi``, warn at or above ``warn_psi``, else ok."""
    if value >= config.alert_psi:
        return "alert"
    return "warn" if value >= config.warn_psi else "ok"


def _drift(ref: FeatureReference, counts: np.ndarray, config: MonitoringConfig) -> FeatureDrift:
    current = shares(counts)
    value = psi(ref.shares, current)
    return FeatureDrift(
        name=ref.name,
        kind=ref.kind,
        psi=round(value, 6),
        status=status_of(value, config),
        labels=bin_labels(ref),
        reference_shares=ref.shares,
        current_shares=current,
    )


def _counts(current: pl.DataFrame, column: str, ref: FeatureReference) -> np.ndarray:
    try:
        return bin_counts(current[column], ref)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise MonitorError(
            f"Column {column!r} of the window is {current[column].dtype}, which cannot be "
            f"binned like the reference's {ref.kind} {ref.name!r}.",
            hint="Log the features with the types of the model's contract.",
        ) from exc


def _prediction_column(ref: FeatureReference, current: pl.DataFrame) -> str:
    if ref.name == SCORE and SCORE in current.columns and current[SCORE].null_count() < len(
        current
    ):
        return SCORE
    fallback = PREDICTION if ref.name == SCORE else ref.name
    if fallback in current.columns and (
        ref.kind == "categorical" or current[fallback].dtype.is_numeric()
    ):
        return fallback
    raise MonitorError(
        f"The window has no {ref.name!r} column to compare the prediction reference with; "
        f"it has {', '.join(map(repr, current.columns[:30]))}.",
        hint="Pass a window of the prediction log, which stores _prediction and _score.",
    )


def _window(current: pl.DataFrame) -> tuple[datetime | None, datetime | None]:
    if TIME_COLUMN not in current.columns or not current[TIME_COLUMN].dtype.is_temporal():
        return None, None
    times = current[TIME_COLUMN]
    return times.min(), times.max()  # type: ignore[return-value]
