"""``check_drift``: a window of the prediction log against the reference, feature by feature.

Each feature gets every statistic of ``_stats`` (PSI, Jensen–Shannon, chi-squared; for
numbers also Kolmogorov–Smirnov and Wasserstein) and one status. With a million rows every
test is significant, so significance alone flags noise; with a hundred rows a large statistic
can be chance. A feature therefore drifts only when its shift is both

- large: its effect (numbers: the larger of the Wasserstein distance in reference standard
  deviations and the Jensen–Shannon distance, which also sees missing values; categories: the
  Jensen–Shannon distance) reaches ``monitoring.warn_distance`` / ``alert_distance``, or its
  PSI reaches ``warn_psi`` / ``alert_psi``; and
- significant: its p-value (the smaller of its KS and chi-squared p-values, times the number
  of tests) is below ``monitoring.p_value`` divided by the number of columns checked
  (Bonferroni), so that a window of unshifted columns raises a false alarm in at most about
  ``p_value`` of windows, whatever its size and number of columns.

The Population Stability Index of a feature with reference shares r and current shares c
over the same bins (missing values are a bin of their own) is

    PSI = sum_i (c_i - r_i) * ln(c_i / r_i),   with r_i, c_i floored at EPSILON = 1e-4

so that a bin empty on one side adds a large but finite term. PSI is 0 for identical shares,
symmetric in r and c, and grows with the shift; 0.1 and 0.25 are the usual warn and alert
levels (``monitoring.warn_psi`` / ``monitoring.alert_psi``).

Multivariate drift is the cross-validated AUC of a small classifier telling a sample of
reference rows from window rows (``_domain``); data-quality drift is each feature's missing
rate against the reference's, the count of categories never seen in training, and the window's
columns that are not features.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import polars as pl

from loopml.core.config import MonitoringConfig
from loopml.core.errors import MonitorError
from loopml.core.records import DriftReport, FeatureDrift, FeatureReference, Reference, Status
from loopml.monitor._bins import bin_labels, in_threads, shares
from loopml.monitor._counts import Counts, count
from loopml.monitor._reference import PREDICTION, SCORE
from loopml.monitor._stats import (
    chi2_test,
    js_distance,
    kolmogorov_p,
    ks_distance,
    wasserstein,
)

EPSILON = 1e-4
TIME_COLUMN = "_predicted_at"
_RANK: dict[str, int] = {"ok": 0, "warn": 1, "alert": 2}
_THRESHOLDS = (("warn_psi", "alert_psi"), ("warn_distance", "alert_distance"),
               ("warn_auc", "alert_auc"))  # fmt: skip


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
    ``_predicted_at``) with the model's reference: every statistic, the effect size and the
    status per feature and for the prediction, the domain classifier's AUC, data quality,
    overall status = the worst, window = first and last ``_predicted_at``.

    A float reference prediction is compared with the log's ``_score``; when that column is
    empty (a regression logs its value as ``_prediction``) the numeric ``_prediction`` is used.

    >>> import polars as pl
    >>> from loopml.core.config import MonitoringConfig
    >>> from loopml.core.contract import ColumnSpec, Contract
    >>> from loopml.monitor import build_reference
    >>> contract = Contract(source="s", columns=(ColumnSpec(name="x", type="float"),))
    >>> ref = build_reference(pl.DataFrame({"x": [float(i % 10) for i in range(1000)]}),
    ...                       contract, columns=["x"], sample_rows=0)
    >>> window = pl.DataFrame({"x": [float(i % 10) + 5 for i in range(200)]})
    >>> report = check_drift(ref, window, model="m", version=1, config=MonitoringConfig())
    >>> x = report.features[0]
    >>> report.status, x.status, round(x.stats["wasserstein"], 2), round(x.effect, 2)
    ('alert', 'alert', 5.0, 1.74)
    """
    check_thresholds(config)
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
    columns = len(reference.features) + (reference.prediction is not None)
    counts = in_threads(lambda ref: _counts(current, ref.name, ref), reference.features)
    features = tuple(
        compare(ref, c, config, columns=columns)
        for ref, c in zip(reference.features, counts, strict=True)
    )
    prediction = None
    if reference.prediction is not None:
        column = _prediction_column(reference.prediction, current)
        prediction = compare(reference.prediction, _counts(current, column,
                             reference.prediction), config, columns=columns)  # fmt: skip
    auc = None
    if reference.sample is not None and config.domain_rows > 0:
        from loopml.monitor._domain import domain_auc

        auc = domain_auc(reference.sample, current, reference.features,
                         rows=config.domain_rows)  # fmt: skip
    domain = _level(auc or 0.0, config.warn_auc, config.alert_auc)
    statuses = [f.status for f in features] + ([prediction.status] if prediction else [])
    start, end = _window(current)
    names = {f.name for f in reference.features}
    return DriftReport(
        model=model,
        version=version,
        reference_rows=reference.rows,
        current_rows=current.height,
        window_start=start,
        window_end=end,
        features=features,
        prediction=prediction,
        status=max([*statuses, domain], key=_RANK.__getitem__),
        thresholds={name: float(getattr(config, name)) for pair in _THRESHOLDS
                    for name in pair} | {"p_value": config.p_value},  # fmt: skip
        domain_auc=auc,
        domain_status=domain,
        extra_columns=tuple(
            c for c in current.columns
            if c not in names and not c.startswith("_") and not current[c].dtype.is_temporal()
        ),
    )


def check_thresholds(config: MonitoringConfig) -> None:
    """Refuse a config whose warn level is above its alert level."""
    for warn, alert in _THRESHOLDS:
        if getattr(config, warn) > getattr(config, alert):
            raise MonitorError(
                f"monitoring.{warn} ({getattr(config, warn)}) is above {alert} "
                f"({getattr(config, alert)}).",
                hint=f"Set {warn} below {alert} in loopml.yaml, e.g. "
                f"{MonitoringConfig.model_fields[warn].default} and "
                f"{MonitoringConfig.model_fields[alert].default}.",
            )


def status_of(value: float, config: MonitoringConfig) -> Status:
    """alert at or above ``alert_psi``, warn at or above ``warn_psi``, else ok."""
    return _level(value, config.warn_psi, config.alert_psi)


def compare(
    ref: FeatureReference, counts: Counts, config: MonitoringConfig, *, columns: int = 1
) -> FeatureDrift:
    """Every statistic, the effect and the status of one column, from its window ``counts``
    (possibly merged from partitions) and its reference; ``columns`` is how many columns the
    window checks, for the Bonferroni correction."""
    current = shares(counts.coarse)
    ref_counts = np.rint(np.asarray(ref.shares) * ref.rows)
    stats: dict[str, float] = {"psi": psi(ref.shares, current),
                               "js": js_distance(ref.shares, current)}  # fmt: skip
    stats["chi2"], stats["chi2_p"] = chi2_test(ref_counts, counts.coarse)
    effect, p_values = stats["js"], [stats["chi2_p"]]
    if ref.kind == "numeric" and ref.fine_edges and counts.fine.size:
        present_ref = ref.rows * (1 - ref.shares[-1])
        present = counts.fine.sum()
        stats["ks"] = ks_distance(ref.fine_shares, counts)
        n_eff = present_ref * present / (present_ref + present) if present else 0.0
        stats["ks_p"] = kolmogorov_p(stats["ks"], n_eff)
        stats["wasserstein"] = wasserstein(ref, counts)
        scale = ref.std or abs(ref.mean or 0.0) or 1.0
        stats["wasserstein_norm"] = stats["wasserstein"] / scale
        effect = max(effect, stats["wasserstein_norm"])
        p_values.append(stats["ks_p"])
    rows = counts.rows
    null_rate = float(counts.coarse[-1] / rows) if rows else 0.0
    stats["null_rate"], stats["unseen"] = null_rate, float(counts.unseen)
    level = max(_level(effect, config.warn_distance, config.alert_distance),
                status_of(stats["psi"], config), key=_RANK.__getitem__)  # fmt: skip
    stats["p_value"] = min(min(p_values) * len(p_values), 1.0)
    significant = stats["p_value"] < config.p_value / max(columns, 1)
    return FeatureDrift(
        name=ref.name,
        kind=ref.kind,
        psi=round(stats["psi"], 6),
        status=level if significant else "ok",
        labels=bin_labels(ref),
        reference_shares=ref.shares,
        current_shares=current,
        stats={k: float(v) for k, v in stats.items()},
        effect=float(effect),
        null_rate=null_rate,
        reference_null_rate=float(ref.shares[-1]) if ref.shares else 0.0,
        unseen=counts.unseen,
    )


def _level(value: float, warn: float, alert: float) -> Status:
    if value >= alert:
        return "alert"
    return "warn" if value >= warn else "ok"


def _counts(current: pl.DataFrame, column: str, ref: FeatureReference) -> Counts:
    try:
        return count(current[column], ref)
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
