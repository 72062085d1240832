"""The few kinds of figure the reports draw, with one look: white, light grid, one font."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

BLUE = "#3569a8"
ORANGE = "#e07b39"
GREY = "#9aa5b1"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
AXIS = {"gridcolor": "#e8ebef", "zerolinecolor": "#c9ced6", "automargin": True}


def layout(title: str = "", *, height: int = 300, **extra: Any) -> dict[str, Any]:
    """The shared layout; ``extra`` overrides or adds keys."""
    out: dict[str, Any] = {
        "template": "none",
        "height": height,
        "margin": {"l": 50, "r": 20, "t": 40 if title else 16, "b": 40},
        "font": {"family": FONT, "size": 12, "color": "#2b3440"},
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 14}},
        "xaxis": dict(AXIS),
        "yaxis": dict(AXIS),
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "showlegend": False,
        "hoverlabel": {"font": {"family": FONT}},
    }
    for key, value in extra.items():
        if key in ("xaxis", "yaxis") and isinstance(value, dict):
            out[key] = {**AXIS, **value}
        else:
            out[key] = value
    return out


def bars(
    labels: Sequence[Any],
    values: Sequence[float],
    *,
    title: str = "",
    x_title: str = "",
    y_title: str = "",
    color: str | Sequence[str] = BLUE,
    horizontal: bool = False,
    hover: Sequence[str] | None = None,
    height: int | None = None,
    **extra: Any,
) -> go.Figure:
    """A bar chart; horizontal bars list the first label at the top."""
    labels = [str(v) for v in labels]
    hover_kw = {"hovertext": list(hover), "hoverinfo": "text"} if hover is not None else {}
    if horizontal:
        trace = go.Bar(y=labels, x=list(values), orientation="h", marker_color=color, **hover_kw)
        axes = {
            "yaxis": {"autorange": "reversed", "title": {"text": y_title}, "type": "category"},
            "xaxis": {"title": {"text": x_title}},
        }
        height = height or max(160, 26 * len(labels) + 70)
    else:
        trace = go.Bar(x=labels, y=list(values), marker_color=color, **hover_kw)
        axes = {
            "xaxis": {"title": {"text": x_title}, "type": "category", "tickangle": -35
                      if sum(len(v) + 2 for v in labels) > 90 else 0},
            "yaxis": {"title": {"text": y_title}},
        }
    return go.Figure(trace, layout=layout(title, height=height or 300, bargap=0.08,
                                          **{**axes, **extra}))


def grouped_bars(
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    colors: Sequence[str] = (GREY, BLUE),
    title: str = "",
    y_title: str = "",
    y_format: str = "",
    height: int = 280,
) -> go.Figure:
    """Bars of several series side by side per label, with a legend."""
    traces = [
        go.Bar(x=list(labels), y=list(values), name=name, marker_color=color)
        for (name, values), color in zip(series.items(), colors, strict=False)
    ]
    return go.Figure(traces, layout=layout(
        title, height=height, showlegend=True, barmode="group", bargap=0.15,
        legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
        xaxis={"type": "category"}, yaxis={"title": {"text": y_title}, "tickformat": y_format},
    ))  # fmt: skip


def heatmap(
    z: Sequence[Sequence[float]],
    x: Sequence[str],
    y: Sequence[str],
    *,
    title: str = "",
    x_title: str = "",
    y_title: str = "",
    colorscale: str | list = "Blues",
    zmin: float | None = None,
    zmax: float | None = None,
    text: Sequence[Sequence[str]] | None = None,
    height: int | None = None,
) -> go.Figure:
    """A heatmap with the first row at the top; ``text`` is written into the cells."""
    cells = {"text": [list(r) for r in text], "texttemplate": "%{text}"} if text else {}
    trace = go.Heatmap(
        z=[list(r) for r in z], x=list(x), y=list(y), colorscale=colorscale,
        zmin=zmin, zmax=zmax, xgap=1, ygap=1, **cells,
    )  # fmt: skip
    size = max(260, min(900, 22 * len(y) + 140))
    return go.Figure(trace, layout=layout(
        title, height=height or size,
        xaxis={"title": {"text": x_title}, "type": "category", "showgrid": False},
        yaxis={"title": {"text": y_title}, "type": "category", "autorange": "reversed",
               "showgrid": False},
    ))  # fmt: skip


def curve(
    x: Sequence[float],
    y: Sequence[float],
    *,
    title: str,
    x_title: str,
    y_title: str,
    diagonal: bool = False,
    height: int = 340,
    fill: bool = True,
) -> go.Figure:
    """A line (ROC, PR) in the unit square, optionally with the chance diagonal."""
    traces = [go.Scatter(x=list(x), y=list(y), mode="lines", line={"color": BLUE, "width": 2},
                         fill="tozeroy" if fill else None, fillcolor="rgba(53,105,168,0.12)")]
    if diagonal:
        traces.append(go.Scatter(x=[0, 1], y=[0, 1], mode="lines",
                                 line={"color": GREY, "dash": "dash", "width": 1}))
    square = {"range": [0, 1.01], "constrain": "domain"}
    return go.Figure(traces, layout=layout(
        title, height=height,
        xaxis={**square, "title": {"text": x_title}},
        yaxis={**square, "title": {"text": y_title}},
    ))  # fmt: skip


def scatter(
    x: Sequence[float],
    y: Sequence[float],
    *,
    title: str,
    x_title: str,
    y_title: str,
    line: tuple[tuple[float, float], tuple[float, float]] | None = None,
    height: int = 340,
) -> go.Figure:
    """Points, optionally with a dashed reference line from ``line[0]`` to ``line[1]``."""
    traces = [go.Scatter(x=list(x), y=list(y), mode="markers",
                         marker={"color": BLUE, "size": 5, "opacity": 0.45})]
    if line is not None:
        (x0, y0), (x1, y1) = line
        traces.append(go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines",
                                 line={"color": ORANGE, "dash": "dash", "width": 1.5}))
    return go.Figure(traces, layout=layout(
        title, height=height, xaxis={"title": {"text": x_title}},
        yaxis={"title": {"text": y_title}},
    ))  # fmt: skip


def lines(
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    title: str = "",
    y_title: str = "",
    y_format: str = "",
    hover: dict[str, Sequence[str]] | None = None,
    height: int = 300,
) -> go.Figure:
    """One line per series over shared category labels (a time axis of periods); several
    series get a legend."""
    palette = [BLUE, ORANGE, "#2e7d32", "#8e44ad", "#c62828", "#00838f", "#6d4c41",
               "#ad1457", "#558b2f", "#283593", "#ef8f00", GREY]  # fmt: skip
    traces = []
    for k, (name, values) in enumerate(series.items()):
        text = {"hovertext": list(hover[name]), "hoverinfo": "text"} if hover else {}
        traces.append(go.Scatter(x=list(labels), y=list(values), mode="lines+markers",
                                 name=name, line={"color": palette[k % len(palette)],
                                 "width": 1.6}, marker={"size": 4}, **text))  # fmt: skip
    return go.Figure(traces, layout=layout(
        title, height=height, showlegend=len(series) > 1,
        legend={"orientation": "h", "y": -0.25},
        xaxis={"type": "category", "nticks": 12},
        yaxis={"title": {"text": y_title}, "tickformat": y_format},
    ))  # fmt: skip
