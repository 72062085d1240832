"""The few kinds of figure the reports draw, with one look: white, light grid, one font.

A figure is plotly.js's own JSON (traces and a layout, what ``Plotly.newPlot`` takes), built
as plain dicts: plotly's Python objects validate every property on construction, which cost a
profile report most of its rendering time, and importing them a second more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BLUE = "#3569a8"
ORANGE = "#e07b39"
GREY = "#9aa5b1"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
AXIS = {"gridcolor": "#e8ebef", "zerolinecolor": "#c9ced6", "automargin": True}
# plotly's "none" template as plotly.js receives it: no styling beyond the layout's own
NO_TEMPLATE = {"data": {"scatter": [{"type": "scatter"}]}}
_NESTED = ("marker_", "line_")  # marker_color=... is marker={"color": ...}, as in plotly


class Figure:
    """A plotly.js figure: ``data`` (a list of traces) and ``layout``, plain JSON values.

    >>> fig = Figure(trace("bar", x=["a"], y=[1], marker_color="#000"), layout={"height": 200})
    >>> fig.add_vline(x=0.5, line_dash="dash")
    >>> fig.to_plotly_json()["data"]
    [{'type': 'bar', 'x': ['a'], 'y': [1], 'marker': {'color': '#000'}}]
    >>> fig.layout["shapes"][0]["line"]
    {'dash': 'dash'}
    """

    def __init__(self, data: dict[str, Any] | Sequence[dict[str, Any]] = (), *,
                 layout: dict[str, Any] | None = None):
        self.data = [data] if isinstance(data, dict) else list(data)
        self.layout = dict(layout or {})

    def to_plotly_json(self) -> dict[str, Any]:
        return {"data": self.data, "layout": self.layout}

    def add_shape(self, **shape: Any) -> None:
        self.layout.setdefault("shapes", []).append(_props(shape))

    def add_annotation(self, **note: Any) -> None:
        self.layout.setdefault("annotations", []).append(_props(note))

    def add_vline(self, x: Any, **shape: Any) -> None:
        """A vertical line across the plot at ``x`` (on the x axis)."""
        self.add_shape(type="line", x0=x, x1=x, xref="x", y0=0, y1=1, yref="y domain", **shape)


def trace(kind: str, **props: Any) -> dict[str, Any]:
    """A trace of ``kind`` (bar, scatter, heatmap ...); properties set to None are left out and
    ``marker_*`` / ``line_*`` nest, as plotly's ``go.Bar(marker_color=...)`` does."""
    return {"type": kind, **_props(props)}


def _props(props: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in props.items()
           if v is not None and not k.startswith(_NESTED)}  # fmt: skip
    for key, value in props.items():
        prefix = next((p for p in _NESTED if key.startswith(p)), None)
        if prefix is not None and value is not None:
            name = prefix[:-1]
            out[name] = {**(out.get(name) or {}), key[len(prefix):]: value}
    return out


def layout(title: str = "", *, height: int = 300, **extra: Any) -> dict[str, Any]:
    """The shared layout; ``extra`` overrides or adds keys."""
    out: dict[str, Any] = {
        "template": NO_TEMPLATE,
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
) -> Figure:
    """A bar chart; horizontal bars list the first label at the top."""
    labels = [str(v) for v in labels]
    hover_kw = {"hovertext": list(hover), "hoverinfo": "text"} if hover is not None else {}
    if horizontal:
        one = trace("bar", y=labels, x=list(values), orientation="h", marker_color=color,
                    **hover_kw)
        axes = {
            "yaxis": {"autorange": "reversed", "title": {"text": y_title}, "type": "category"},
            "xaxis": {"title": {"text": x_title}},
        }
        height = height or max(160, 26 * len(labels) + 70)
    else:
        one = trace("bar", x=labels, y=list(values), marker_color=color, **hover_kw)
        axes = {
            "xaxis": {"title": {"text": x_title}, "type": "category", "tickangle": -35
                      if sum(len(v) + 2 for v in labels) > 90 else 0},
            "yaxis": {"title": {"text": y_title}},
        }
    return Figure(one, layout=layout(title, height=height or 300, bargap=0.08,
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
) -> Figure:
    """Bars of several series side by side per label, with a legend."""
    traces = [
        trace("bar", x=list(labels), y=list(values), name=name, marker_color=color)
        for (name, values), color in zip(series.items(), colors, strict=False)
    ]
    return Figure(traces, layout=layout(
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
) -> Figure:
    """A heatmap with the first row at the top; ``text`` is written into the cells."""
    cells = {"text": [list(r) for r in text], "texttemplate": "%{text}"} if text else {}
    one = trace(
        "heatmap", z=[list(r) for r in z], x=list(x), y=list(y), colorscale=colorscale,
        zmin=zmin, zmax=zmax, xgap=1, ygap=1, **cells,
    )  # fmt: skip
    size = max(260, min(900, 22 * len(y) + 140))
    return Figure(one, layout=layout(
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
) -> Figure:
    """A line (ROC, PR) in the unit square, optionally with the chance diagonal."""
    traces = [trace("scatter", x=list(x), y=list(y), mode="lines",
                    line={"color": BLUE, "width": 2}, fill="tozeroy" if fill else None,
                    fillcolor="rgba(53,105,168,0.12)")]
    if diagonal:
        traces.append(trace("scatter", x=[0, 1], y=[0, 1], mode="lines",
                            line={"color": GREY, "dash": "dash", "width": 1}))
    square = {"range": [0, 1.01], "constrain": "domain"}
    return Figure(traces, layout=layout(
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
) -> Figure:
    """Points, optionally with a dashed reference line from ``line[0]`` to ``line[1]``."""
    traces = [trace("scatter", x=list(x), y=list(y), mode="markers",
                    marker={"color": BLUE, "size": 5, "opacity": 0.45})]
    if line is not None:
        (x0, y0), (x1, y1) = line
        traces.append(trace("scatter", x=[x0, x1], y=[y0, y1], mode="lines",
                            line={"color": ORANGE, "dash": "dash", "width": 1.5}))
    return Figure(traces, layout=layout(
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
) -> Figure:
    """One line per series over shared category labels (a time axis of periods); several
    series get a legend."""
    palette = [BLUE, ORANGE, "#2e7d32", "#8e44ad", "#c62828", "#00838f", "#6d4c41",
               "#ad1457", "#558b2f", "#283593", "#ef8f00", GREY]  # fmt: skip
    traces = []
    for k, (name, values) in enumerate(series.items()):
        text = {"hovertext": list(hover[name]), "hoverinfo": "text"} if hover else {}
        traces.append(trace("scatter", x=list(labels), y=list(values), mode="lines+markers",
                            name=name, line={"color": palette[k % len(palette)], "width": 1.6},
                            marker={"size": 4}, **text))  # fmt: skip
    return Figure(traces, layout=layout(
        title, height=height, showlegend=len(series) > 1,
        legend={"orientation": "h", "y": -0.25},
        xaxis={"type": "category", "nticks": 12},
        yaxis={"title": {"text": y_title}, "tickformat": y_format},
    ))  # fmt: skip
