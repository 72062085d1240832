"""The drift report: PSI per feature against the warn and alert levels, prediction drift, and
reference-vs-current shares for every feature, worst first."""

from __future__ import annotations

from typing import Any

from loopml.core.records import DriftReport, FeatureDrift
from loopml.reports._figures import bars, grouped_bars
from loopml.reports._page import STATUS_COLORS, Page, num, render_page, when


def render_drift(report: DriftReport, *, title: str | None = None) -> str:
    """The drift report of ``report`` as one HTML page."""
    page = Page()
    ranked = sorted(report.features, key=lambda f: -f.psi)
    counts = {s: sum(1 for f in report.features if f.status == s) for s in STATUS_COLORS}
    context: dict[str, Any] = {
        "kind": "drift",
        "title": title or f"Drift of {report.model} v{report.version}",
        "subtitle": f"window {when(report.window_start)} → {when(report.window_end)}",
        "status": report.status,
        "overview": [
            ("Status", report.status.upper(), _status_detail(counts)),
            ("Model", f"{report.model} v{report.version}", ""),
            ("Current rows", num(report.current_rows), "in the window"),
            ("Reference rows", num(report.reference_rows), "held out at training"),
            ("Warn at PSI", num(report.thresholds.get("warn_psi")), ""),
            ("Alert at PSI", num(report.thresholds.get("alert_psi")), ""),
        ],
        "psi_plot": _psi_plot(page, ranked, report.thresholds) if ranked else None,
        "table": [_row(f) for f in ranked],
        "prediction": _block(page, report.prediction) if report.prediction else None,
        "features": [_block(page, f) for f in ranked],
    }
    context["nav"] = [("overview", "Overview"), ("psi", "PSI per feature")]
    if report.prediction is not None:
        context["nav"].append(("prediction", "Prediction drift"))
    context["nav"].append(("features", "Shares per feature"))
    return render_page("drift.html.j2", page, **context)


def _status_detail(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no features"


def _psi_plot(page: Page, ranked: list[FeatureDrift], thresholds: dict[str, float]) -> Any:
    """Bars coloured by status with the warn and alert levels as dashed lines. When one PSI
    dwarfs the levels the axis is logarithmic, so the small bars and the levels stay visible."""
    import math

    warn, alert = thresholds.get("warn_psi"), thresholds.get("alert_psi")
    levels = [v for v in (warn, alert) if v]
    top = max([f.psi for f in ranked] + levels)
    hover = [f"{f.name}: PSI {num(f.psi)} ({f.status})" for f in ranked]
    if levels and top > 5 * max(levels):
        floor = min([f.psi for f in ranked if f.psi > 0] + levels) / 2
        axis = {"type": "log", "range": [math.log10(floor), math.log10(top * 1.5)]}
        values = [max(f.psi, floor) for f in ranked]
    else:
        axis, values = {"range": [0, top * 1.1 or 1.0]}, [f.psi for f in ranked]
    fig = bars([f.name for f in ranked], values, horizontal=True,
               color=[STATUS_COLORS[f.status] for f in ranked], hover=hover,
               title="Population Stability Index per feature", margin={"l": 50, "r": 20,
               "t": 56, "b": 40}, xaxis={**axis, "title": {"text": "PSI"}})  # fmt: skip
    log = axis.get("type") == "log"
    for level, name, side in ((warn, "warn", "left"), (alert, "alert", "right")):
        if level:
            color = STATUS_COLORS[name]
            fig.add_vline(x=level, line_dash="dash", line_color=color)
            # annotations on a log axis take the exponent, shapes the value
            fig.add_annotation(x=math.log10(level) if log else level, y=1.0, yref="paper",
                               text=f"{name} {num(level)}", showarrow=False, yanchor="bottom",
                               xanchor=side == "left" and "right" or "left",
                               font={"color": color, "size": 11})  # fmt: skip
    return page.plot(fig)


def _row(drift: FeatureDrift) -> dict[str, Any]:
    return {"name": drift.name, "kind": drift.kind, "psi": num(drift.psi), "status": drift.status}


def _block(page: Page, drift: FeatureDrift) -> dict[str, Any]:
    fig = grouped_bars(
        drift.labels,
        {"reference": drift.reference_shares, "current": drift.current_shares},
        title=f"{drift.name}: share of rows per bin", y_title="share of rows", y_format=".0%",
    )
    return {**_row(drift), "plot": page.plot(fig)}
