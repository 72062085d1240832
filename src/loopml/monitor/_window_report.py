"""``check_window``: one window of the prediction log judged on drift and performance, and
``history_rows``: the rows the monitoring history table keeps of it.

Performance judges the primary metric against the model's reference score (its test split):
a value worse by more than ``decay_margin`` is an alert. For metrics where greater is better
(all in [0, 1]: ROC AUC, accuracy, F1, ...) the margin is absolute; for errors (RMSE, MAE, log
loss) it is relative to the reference. The realised value is judged once at least
``config.min_rows`` labelled rows arrived; before that the estimate is (classifiers), over at
least ``config.min_rows`` rows. The estimate is compared with the realised value on the same
labelled rows; a gap above ``estimate_tolerance`` is a warning (the scores no longer mean
what they meant at training: concept drift, or a calibration that does not hold). A change
found in the stream of the labelled rows' errors is a warning too.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import polars as pl

from loopml.core.config import MonitoringConfig
from loopml.core.records import DriftReport, ModelBundle, Status, WindowReport
from loopml.evaluate import default_metric, greater_is_better
from loopml.monitor._concept import concept_drift
from loopml.monitor._drift import check_drift
from loopml.monitor._performance import TIME, Performance, performance

_RANK: dict[str, int] = {"ok": 0, "warn": 1, "alert": 2}
HISTORY_SCHEMA = {
    "window_start": pl.Datetime("us", "UTC"),
    "window_end": pl.Datetime("us", "UTC"),
    "model_version": pl.Int64,
    "column": pl.String,
    "statistic": pl.String,
    "value": pl.Float64,
    "status": pl.String,
    "monitored_at": pl.Datetime("us", "UTC"),
}


def check_window(
    bundle: ModelBundle,
    window: pl.DataFrame,
    *,
    model: str,
    version: int,
    config: MonitoringConfig,
    metric: str | None = None,
    decay_margin: float = 0.05,
    estimate_tolerance: float = 0.05,
) -> WindowReport:
    """Judge one window of the prediction log (with ``_label`` where labels arrived): drift
    when it has at least ``config.min_rows`` rows, realised and estimated performance on the
    primary metric (``metric``, else the model's evaluation metric), and the worst status.

    >>> import polars as pl
    >>> from loopml.core.config import MonitoringConfig
    >>> from loopml.core.contract import Contract
    >>> from loopml.core.records import Evaluation, ModelBundle, Reference
    >>> ev = Evaluation(task="classification", metric="accuracy", greater_is_better=True,
    ...                 metrics={"accuracy": 0.9}, rows=100)
    >>> bundle = ModelBundle(model=None, contract=Contract(source="s", columns=()),
    ...     task="classification", target="y", feature_columns=(), classes=("no", "yes"),
    ...     positive_label="yes", reference=Reference(features=()), evaluation=ev)
    >>> window = pl.DataFrame({"_score": [0.9, 0.1] * 50, "_label": ["no", "yes"] * 50})
    >>> report = check_window(bundle, window, model="m", version=1,
    ...                       config=MonitoringConfig(min_rows=100))
    >>> report.realised["accuracy"], report.estimated["accuracy"], report.status
    (0.0, 0.9, 'alert')
    >>> report.reasons[0]
    'realised accuracy 0 is below the reference 0.9 by more than 0.05'
    """
    drift = None
    if window.height >= config.min_rows:
        drift = check_drift(bundle.reference, window, model=model, version=version,
                            config=config)  # fmt: skip
    metric = _primary(bundle, metric)
    reference = None
    if bundle.evaluation is not None and metric is not None:
        reference = bundle.evaluation.metrics.get(metric)
    perf = performance(bundle, window)
    reasons: list[str] = []
    perf_status: Status = "ok"

    judged = None
    if perf.labelled_rows >= config.min_rows and metric in perf.realised:
        judged = ("realised", perf.realised[metric])
    elif window.height >= config.min_rows and metric in perf.estimated:
        judged = ("estimated", perf.estimated[metric])
    if judged is not None and reference is not None and metric is not None:
        kind, value = judged
        if _decayed(metric, value, reference, decay_margin):
            perf_status = "alert"
            word = "below" if greater_is_better(metric) else "above"
            how = f"{decay_margin:g}" if greater_is_better(metric) else f"{decay_margin:.0%}"
            reasons.append(f"{kind} {metric} {value:.4g} is {word} the reference "
                           f"{reference:.4g} by more than {how}")  # fmt: skip

    gap = None
    if metric in perf.realised and metric in perf.estimated_labelled:
        gap = round(abs(perf.estimated_labelled[metric] - perf.realised[metric]), 6)
    disagrees = bool(
        gap is not None and perf.labelled_rows >= config.min_rows and gap > estimate_tolerance
    )
    if disagrees:
        perf_status = _worst(perf_status, "warn")
        reasons.append(f"estimated and realised {metric} differ by {gap:.4g}, more than "
                       f"{estimate_tolerance:g}")  # fmt: skip

    changed_at = _concept_change(perf)
    if changed_at is not None:
        perf_status = _worst(perf_status, "warn")
        reasons.append(f"the realised errors changed at {changed_at:%Y-%m-%d %H:%M}")
    if drift is not None and drift.status != "ok":
        worst = sorted(drift.features, key=lambda f: -_RANK[f.status])
        names = [f.name for f in worst if f.status == drift.status][:5]
        if drift.prediction is not None and drift.prediction.status == drift.status:
            names.append("the prediction")
        reasons.append(f"drift {drift.status} on {', '.join(names) or 'the window'}")

    start, end = _span(window, drift)
    return WindowReport(
        model=model,
        version=version,
        start=start,
        end=end,
        rows=window.height,
        drift=drift,
        labelled_rows=perf.labelled_rows,
        metric=metric,
        realised=perf.realised,
        estimated=perf.estimated,
        estimate_gap=gap,
        estimate_disagrees=disagrees,
        status=_worst(perf_status, drift.status if drift is not None else "ok"),
        performance_status=perf_status,
        reference_score=reference,
        concept_drift_at=changed_at,
        reasons=tuple(reasons),
    )


def history_rows(report: WindowReport, *, monitored_at: datetime | None = None) -> pl.DataFrame:
    """The rows the monitoring history keeps of one window: one per (column, statistic), with
    column ``_prediction`` for prediction drift, ``_domain`` for multivariate drift,
    ``_performance`` for metrics and ``_window`` for the window as a whole.

    >>> from loopml.core.records import WindowReport
    >>> report = WindowReport(model="m", version=2, start=None, end=None, rows=500,
    ...     drift=None, labelled_rows=120, metric="accuracy", realised={"accuracy": 0.81},
    ...     estimated={"accuracy": 0.84}, estimate_gap=0.03)
    >>> rows = history_rows(report)
    >>> for row in rows.select("column", "statistic", "value").rows()[:3]:
    ...     print(row)
    ('_performance', 'realised_accuracy', 0.81)
    ('_performance', 'estimated_accuracy', 0.84)
    ('_performance', 'estimate_gap', 0.03)
    >>> rows.columns[:4]
    ['window_start', 'window_end', 'model_version', 'column']
    >>> rows.columns[4:]
    ['statistic', 'value', 'status', 'monitored_at']
    """
    rows: list[tuple[str, str, float, str]] = []
    perf = report.performance_status
    rows += [("_performance", f"realised_{k}", v, perf) for k, v in report.realised.items()]
    rows += [("_performance", f"estimated_{k}", v, perf) for k, v in report.estimated.items()]
    if report.estimate_gap is not None:
        rows.append(("_performance", "estimate_gap", report.estimate_gap, perf))
    if report.concept_drift_at is not None:
        rows.append(("_performance", "concept_drift", 1.0, perf))
    if report.drift is not None:
        rows += _drift_rows(report.drift)
    if report.quality_score is not None:
        rows.append(("_quality", "score", report.quality_score, report.status))
        rows += [(v.column, f"contract_{v.rule}", float(v.rows), report.status)
                 for v in report.quality]
    rows.append(("_window", "rows", float(report.rows), report.status))
    rows.append(("_window", "labelled_rows", float(report.labelled_rows), report.status))
    when = monitored_at or datetime.now(UTC)
    frame = pl.DataFrame(
        {
            "window_start": [report.start] * len(rows),
            "window_end": [report.end] * len(rows),
            "model_version": [report.version] * len(rows),
            "column": [r[0] for r in rows],
            "statistic": [r[1] for r in rows],
            "value": [float(r[2]) for r in rows],
            "status": [r[3] for r in rows],
            "monitored_at": [when] * len(rows),
        },
        schema=HISTORY_SCHEMA,
    )
    return frame


def _drift_rows(drift: DriftReport) -> list[tuple[str, str, float, str]]:
    """Every number a drift report holds per column: its statistics (the ``stats`` map and
    scalar fields such as PSI, effect, null rate), so new statistics reach the history
    unchanged; the report's ``domain_*`` numbers go under ``_domain``."""
    rows: list[tuple[str, str, float, str]] = []
    for feature in drift.features:
        rows += [(feature.name, s, v, feature.status) for s, v in _numbers(feature)]
    if drift.prediction is not None:
        rows += [("_prediction", s, v, drift.prediction.status)
                 for s, v in _numbers(drift.prediction)]  # fmt: skip
    domain_status = str(getattr(drift, "domain_status", drift.status))
    for name, value in _numbers(drift):
        if name.startswith("domain_"):
            rows.append(("_domain", name.removeprefix("domain_"), value, domain_status))
    return rows


def _numbers(record: object) -> list[tuple[str, float]]:
    """(name, value) of a record's numbers: the entries of a map named ``stats`` or
    ``statistics`` by their own names (these win), then scalar fields and other maps' entries."""
    out: dict[str, float] = {}
    fields = sorted(dataclasses.fields(record),  # type: ignore[arg-type]
                    key=lambda f: f.name not in ("stats", "statistics"))  # fmt: skip
    for f in fields:
        value = getattr(record, f.name)
        if _number(value):
            out.setdefault(f.name, float(value))
        elif isinstance(value, dict):
            own = f.name in ("stats", "statistics")
            for k, v in value.items():
                if _number(v):
                    out.setdefault(str(k) if own else f"{f.name}_{k}", float(v))
    return list(out.items())


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _primary(bundle: ModelBundle, metric: str | None) -> str | None:
    if metric is not None:
        return metric
    if bundle.evaluation is not None:
        return bundle.evaluation.metric
    if bundle.task in ("classification", "regression"):
        return default_metric(bundle.task)
    return None


def _decayed(metric: str, value: float, reference: float, margin: float) -> bool:
    if greater_is_better(metric):
        return value < reference - margin
    return value > reference * (1 + margin) if reference > 0 else value > reference + margin


def _concept_change(perf: Performance) -> datetime | None:
    if perf.errors.size == 0:
        return None
    index = concept_drift(perf.errors.tolist())
    if index is None:
        return None
    if perf.error_times is not None:
        return perf.error_times[index]  # type: ignore[no-any-return]
    return None


def _span(
    window: pl.DataFrame, drift: DriftReport | None
) -> tuple[datetime | None, datetime | None]:
    if drift is not None and drift.window_start is not None:
        return drift.window_start, drift.window_end
    if TIME in window.columns and window[TIME].dtype.is_temporal() and window.height:
        return window[TIME].min(), window[TIME].max()  # type: ignore[return-value]
    return None, None


def _worst(a: Status, b: Status) -> Status:
    return a if _RANK[a] >= _RANK[b] else b

