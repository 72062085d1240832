"""The monitoring report: a model's windows over time on one time axis — realised against
estimated performance, drift per feature, the prediction distribution — with the events of
the loop (retrains, promotions, rollbacks, alerts) marked where they happened."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from loopml.core.records import WindowReport
from loopml.reports._figures import BLUE, GREY, ORANGE, Figure, layout, trace
from loopml.reports._page import STATUS_COLORS, Page, num, render_page, when

EVENT_COLORS = {
    "promote": "#2e7d32", "rollback": "#c62828", "alert": "#ef8f00", "retrain": "#6a4c93",
    "decision": "#3569a8", "monitor": "#9aa5b1", "feedback": "#9aa5b1",
}  # fmt: skip
SHADES = ["#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"]


def render_monitoring(
    windows: Sequence[WindowReport],
    *,
    events: Sequence[Mapping[str, Any]] = (),
    title: str | None = None,
) -> str:
    """The monitoring report of ``windows`` (oldest first after sorting) as one HTML page.

    ``events`` are catalog events as ``Catalog.events`` lists them: ``at`` (a datetime),
    ``kind``, ``subject`` and a ``payload`` dict (its ``reason`` or ``version`` is shown).
    """
    page = Page()
    ordered = sorted(windows, key=lambda w: (w.start is None, w.start or datetime.min, w.version))
    timed = all(w.start is not None for w in ordered)
    x = [_middle(w) for w in ordered] if timed else [f"window {i + 1}" for i in range(len(ordered))]
    marks = [_event(e) for e in events]
    marks = sorted((m for m in marks if m["at"] is not None), key=lambda m: m["at"])
    placed = _stagger(marks, ordered) if timed else []
    latest = ordered[-1]
    metric = next((w.metric for w in reversed(ordered) if w.metric), None)
    context: dict[str, Any] = {
        "kind": "monitoring",
        "title": title or f"Monitoring of {latest.model}",
        "subtitle": f"{len(ordered)} window{'s' * (len(ordered) != 1)} · "
        f"{when(ordered[0].start)} → {when(latest.end)}",
        "status": latest.status,
        "overview": _overview(ordered, metric),
        "performance_plot": _performance(page, ordered, x, metric, placed),
        "drift_plot": _drift(page, ordered, x, placed),
        "prediction_plot": _predictions(page, ordered, x, placed),
        "windows": [_row(w) for w in reversed(ordered)],
        "events": [
            {**m, "at": when(m["at"]), "color": EVENT_COLORS.get(m["kind"], GREY)}
            for m in reversed(marks)
        ],
        "metric": metric,
    }
    context["nav"] = [("overview", "Overview"), ("performance", "Performance"),
                      ("drift", "Drift"), ("predictions", "Predictions"),
                      ("windows", "Windows"), ("events", "Events")]  # fmt: skip
    return render_page("monitoring.html.j2", page, **context)


def _overview(windows: Sequence[WindowReport], metric: str | None) -> list[tuple[str, str, str]]:
    latest = windows[-1]
    counts = {s: sum(1 for w in windows if w.status == s) for s in STATUS_COLORS}
    versions = sorted({w.version for w in windows})
    realised = next((w for w in reversed(windows) if metric in w.realised), None)
    estimated = next((w for w in reversed(windows) if metric in w.estimated), None)
    return [
        ("Newest window", latest.status.upper(),
         "; ".join(latest.reasons[:2]) or "nothing to report"),
        ("Windows", num(len(windows)), ", ".join(f"{n} {s}" for s, n in counts.items() if n)),
        ("Model", latest.model, "version" + "s" * (len(versions) > 1) + " "
         + ", ".join(map(str, versions))),
        ("Predictions", num(sum(w.rows for w in windows)),
         f"{num(sum(w.labelled_rows for w in windows))} with labels"),
        (f"Realised {metric or ''}".strip(), num(realised.realised[metric]) if realised else "—",
         f"newest labelled window · reference {num(latest.reference_score)}"),
        (f"Estimated {metric or ''}".strip(),
         num(estimated.estimated[metric]) if estimated else "—",
         "from calibrated scores, before labels"),
    ]  # fmt: skip


def _performance(
    page: Page, windows: Sequence[WindowReport], x: list[Any], metric: str | None,
    events: list[dict[str, Any]],
) -> Any:
    """Realised (solid) and estimated (dashed) primary metric per window, the reference."""
    if metric is None:
        return None
    realised = [w.realised.get(metric) for w in windows]
    estimated = [w.estimated.get(metric) for w in windows]
    traces = [
        trace("scatter", x=x, y=realised, name="realised", mode="lines+markers",
              line={"color": BLUE, "width": 2}, connectgaps=False,
              hovertext=[f"realised {metric} {num(v)} · {w.labelled_rows} labelled rows"
                         for v, w in zip(realised, windows, strict=True)],
              hoverinfo="text+x"),
        trace("scatter", x=x, y=estimated, name="estimated", mode="lines+markers",
              line={"color": ORANGE, "width": 2, "dash": "dash"},
              marker={"symbol": "diamond"},
              hovertext=[f"estimated {metric} {num(v)}"
                         + (" · disagrees with realised" if w.estimate_disagrees else "")
                         for v, w in zip(estimated, windows, strict=True)],
              hoverinfo="text+x"),
    ]  # fmt: skip
    refs = [w.reference_score for w in windows]
    if any(r is not None for r in refs):
        traces.append(trace("scatter", x=x, y=refs, name="reference (test split)",
                            mode="lines", line={"color": GREY, "width": 1.5, "dash": "dot",
                                                "shape": "hv"}))  # fmt: skip
    alerts = [(xi, w) for xi, w in zip(x, windows, strict=True) if w.performance_status != "ok"]
    if alerts:
        traces.append(trace(
            "scatter",
            x=[a for a, _ in alerts],
            y=[w.realised.get(metric, w.estimated.get(metric)) for _, w in alerts],
            name="performance warn / alert", mode="markers",
            marker={"color": [STATUS_COLORS[w.performance_status] for _, w in alerts],
                    "size": 13, "symbol": "circle-open", "line": {"width": 2}},
            hovertext=["; ".join(w.reasons) for _, w in alerts], hoverinfo="text",
        ))  # fmt: skip
    fig = Figure(traces, layout=layout(
        f"{metric}: realised against estimated, per window", height=360, showlegend=True,
        legend={"orientation": "h", "y": -0.18}, yaxis={"title": {"text": metric}},
    ))  # fmt: skip
    _mark(fig, events)
    return page.plot(fig)


def _drift(page: Page, windows: Sequence[WindowReport], x: list[Any],
           events: list[dict[str, Any]]) -> Any:  # fmt: skip
    """PSI per feature (rows) and window (columns), coloured on the warn/alert levels."""
    with_drift = [(xi, w.drift) for xi, w in zip(x, windows, strict=True) if w.drift is not None]
    if not with_drift:
        return None
    names: list[str] = []
    for _, d in with_drift:
        names += [f.name for f in d.features if f.name not in names]
    if any(d.prediction is not None for _, d in with_drift):
        names.append("_prediction")
    worst: dict[str, float] = {n: 0.0 for n in names}
    cells: dict[tuple[str, int], Any] = {}
    for j, (_, d) in enumerate(with_drift):
        for f in (*d.features, *([d.prediction] if d.prediction is not None else [])):
            name = "_prediction" if f is d.prediction else f.name
            cells[name, j] = f
            worst[name] = max(worst[name], f.psi)
    names.sort(key=lambda n: (n == "_prediction", -worst[n]))
    alert = max((d.thresholds.get("alert_psi", 0.25) for _, d in with_drift), default=0.25)
    warn = min((d.thresholds.get("warn_psi", 0.1) for _, d in with_drift), default=0.1)
    top = 2 * alert
    z = [[min(cells[n, j].psi, top) if (n, j) in cells else None
          for j in range(len(with_drift))] for n in names]  # fmt: skip
    hover = [[f"{n}: PSI {num(cells[n, j].psi)} ({cells[n, j].status})" if (n, j) in cells
              else f"{n}: not measured" for j in range(len(with_drift))]
             for n in names]  # fmt: skip
    scale = [[0.0, "#f4f7fb"], [warn / top, "#cfe3cf"], [warn / top, "#ffe0b2"],
             [alert / top, "#ffb74d"], [alert / top, "#ef9a9a"], [1.0, "#c62828"]]  # fmt: skip
    fig = Figure(
        trace("heatmap", z=z, x=[xi for xi, _ in with_drift], y=names, colorscale=scale,
              zmin=0, zmax=top, xgap=1, ygap=1, hovertext=hover, hoverinfo="text",
              colorbar={"title": {"text": "PSI"}, "thickness": 12}),
        layout=layout("Drift per feature and window (PSI; warn and alert levels as colour steps)",
                      height=max(260, min(900, 22 * len(names) + 150)),
                      yaxis={"type": "category", "autorange": "reversed", "showgrid": False},
                      xaxis={"showgrid": False}),
    )  # fmt: skip
    _mark(fig, events)
    return page.plot(fig)


def _predictions(page: Page, windows: Sequence[WindowReport], x: list[Any],
                 events: list[dict[str, Any]]) -> Any:  # fmt: skip
    """The share of predictions per reference bin (or class) per window, stacked."""
    rows = [(xi, w.drift.prediction) for xi, w in zip(x, windows, strict=True)
            if w.drift is not None and w.drift.prediction is not None]  # fmt: skip
    if not rows:
        return None
    labels = list(rows[-1][1].labels)
    traces = []
    for i, label in enumerate(labels):
        shares = [p.current_shares[i] if i < len(p.current_shares) else None for _, p in rows]
        traces.append(trace("bar", x=[xi for xi, _ in rows], y=shares, name=label,
                            marker_color=SHADES[i * len(SHADES) // max(len(labels), 1)],
                            hovertemplate=f"{label}: %{{y:.1%}}<extra></extra>"))  # fmt: skip
    fig = Figure(traces, layout=layout(
        "Prediction distribution per window (share of rows per reference bin; dotted: the "
        "reference's boundaries)", height=380, barmode="stack", bargap=0.15, showlegend=True,
        legend={"orientation": "h", "y": -0.2, "traceorder": "normal"},
        yaxis={"tickformat": ".0%", "range": [0, 1], "title": {"text": "share of predictions"}},
    ))  # fmt: skip
    edge = 0.0
    for label, share in list(zip(labels, rows[-1][1].reference_shares, strict=False))[:-1]:
        edge += share
        if 0.005 < edge < 0.995:
            fig.add_shape(type="line", xref="paper", x0=0, x1=1, y0=edge, y1=edge,
                          line={"color": "#5b6673", "width": 1, "dash": "dot"},
                          name=f"reference up to {label}")  # fmt: skip
    _mark(fig, events)
    return page.plot(fig)


def _mark(fig: Figure, events: list[dict[str, Any]]) -> None:
    """Each event as a dotted vertical line with its kind on top, on a time axis."""
    for e in events:
        color = EVENT_COLORS.get(e["kind"], GREY)
        fig.add_shape(type="line", x0=e["at"], x1=e["at"], y0=0, y1=1, yref="paper",
                      line={"color": color, "width": 1.5, "dash": "dot"})  # fmt: skip
        fig.add_annotation(x=e["at"], y=1.0, yref="paper", yanchor="bottom", text=e["kind"],
                           showarrow=False, font={"color": color, "size": 10},
                           yshift=e["shift"], hovertext=e["summary"] or e["kind"])  # fmt: skip


def _stagger(marks: list[dict[str, Any]], windows: Sequence[WindowReport]) -> list[dict[str, Any]]:
    """Lift the label of an event that follows another closely (under 1/25 of the time shown),
    so labels stack rather than cover each other."""
    times = [t for w in windows for t in (w.start, w.end) if t is not None]
    times += [m["at"] for m in marks]
    close = (max(times) - min(times)).total_seconds() / 25 if times else 0.0
    out, previous, shift = [], None, 0
    for m in marks:
        near = previous is not None and (m["at"] - previous).total_seconds() < close
        shift = shift + 12 if near else 0
        out.append({**m, "shift": shift})
        previous = m["at"]
    return out


def _event(raw: Mapping[str, Any]) -> dict[str, Any]:
    at = raw.get("at")
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            at = None
    if isinstance(at, datetime) and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    payload = raw.get("payload") or {}
    summary = str(payload.get("reason") or payload.get("message") or "")
    if not summary and payload.get("version") is not None:
        summary = f"version {payload['version']}"
    return {"at": at if isinstance(at, datetime) else None, "kind": str(raw.get("kind", "event")),
            "subject": str(raw.get("subject", "")), "summary": summary}  # fmt: skip


def _middle(w: WindowReport) -> datetime:
    assert w.start is not None
    return w.start + ((w.end or w.start) - w.start) / 2


def _row(w: WindowReport) -> dict[str, Any]:
    m = w.metric
    return {
        "start": when(w.start), "end": when(w.end), "version": w.version, "rows": num(w.rows),
        "labelled": num(w.labelled_rows),
        "realised": num(w.realised.get(m)) if m else "—",
        "estimated": num(w.estimated.get(m)) if m else "—",
        "gap": num(w.estimate_gap), "disagrees": w.estimate_disagrees,
        "drift": w.drift.status if w.drift is not None else None,
        "status": w.status, "reasons": "; ".join(w.reasons),
    }  # fmt: skip

