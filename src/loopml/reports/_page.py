"""One report page: its figures, the Jinja environment and the number formats.

Every figure of a page becomes a placeholder ``<div class="plot">`` plus an entry in one JSON
block; a small script calls ``Plotly.newPlot`` for each entry. plotly.js is either inlined
once (``render``: a self-contained page) or, for pages written into a folder
(``write_report``), one shared copy ``plotly-<version>.min.js`` beside them that the page
loads by a relative path (falling back to the copy's absolute ``file:`` address): the file
still opens offline and does not carry 4.8 MB of script.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from markupsafe import Markup

STATUS_COLORS = {"ok": "#2e7d32", "warn": "#ef8f00", "alert": "#c62828"}


class Page:
    """The figures of one report, in the order they were added."""

    def __init__(self) -> None:
        self._figures: list[dict[str, Any]] = []

    def plot(self, figure: Any, *, css_class: str = "") -> Markup:
        """Add a figure (``_figures.Figure``, or anything with ``to_plotly_json``) and return its
        placeholder."""
        spec = figure.to_plotly_json()
        fid = f"fig-{len(self._figures) + 1}"
        self._figures.append({"id": fid, "data": spec["data"], "layout": spec["layout"]})
        height = int(spec["layout"].get("height") or 320)
        return Markup(
            f'<div class="plot {css_class}" id="{fid}" data-figure '
            f'style="min-height:{height}px"></div>'
        )

    @property
    def count(self) -> int:
        return len(self._figures)

    def figures_json(self) -> Markup:
        """The figures as JSON that is safe inside a ``<script>`` element."""
        text = json.dumps(self._figures, separators=(",", ":"), default=_json_default)
        return Markup(text.replace("</", "<\\/").replace("<!--", "<\\!--"))


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, date):  # a datetime too
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} into a figure")


# where the page being rendered loads plotly.js from; None: inline it
_SOURCES: ContextVar[tuple[str, ...] | None] = ContextVar("plotly_sources", default=None)


@cache
def plotly_js() -> Markup:
    from plotly.offline import get_plotlyjs

    return Markup(get_plotlyjs())


def shared_plotly(folder: Path) -> Path:
    """The folder's one copy of plotly.js, ``plotly-<version>.min.js``, written if missing
    (atomically, so a page never loads half a file)."""
    from plotly.offline import get_plotlyjs_version

    path = folder / f"plotly-{get_plotlyjs_version()}.min.js"
    text = plotly_js()
    if not path.is_file() or path.stat().st_size != len(text.encode("utf-8")):
        folder.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.{os.getpid()}.part")
        part.write_text(text, encoding="utf-8")
        part.replace(path)
    return path


@contextmanager
def loading_plotly_from(script: Path, page: Path) -> Iterator[None]:
    """Pages rendered inside this block load ``script`` instead of inlining plotly.js: by
    its path relative to ``page``'s folder, else by its absolute address (a copy of the
    page moved elsewhere on this machine)."""
    relative = Path(os.path.relpath(script.resolve(), page.resolve().parent)).as_posix()
    token = _SOURCES.set((relative, script.resolve().as_uri()))
    try:
        yield
    finally:
        _SOURCES.reset(token)


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("loopml")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "dev"


@cache
def environment() -> Any:
    """The Jinja environment over the templates shipped in this package."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("loopml.reports", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(num=num, pct=pct, when=when)
    env.globals["status_colors"] = STATUS_COLORS
    return env


def render_page(template: str, page: Page, **context: Any) -> str:
    """Render ``template`` with ``context``, the page's figures and plotly.js (inlined, or
    loaded from the shared copy inside ``loading_plotly_from``)."""
    return environment().get_template(template).render(
        figures_json=page.figures_json(),
        figure_count=page.count,
        plotly_js=plotly_js() if _SOURCES.get() is None else None,
        plotly_sources=list(_SOURCES.get() or ()),
        version=_version(),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        **context,
    )


# ---- number formats ------------------------------------------------------------------------


def num(value: Any, digits: int = 4) -> str:
    """A number for a table: thousands separators, about ``digits`` significant digits.

    >>> num(1234567), num(1017.2153), num(0.000123456), num(3.0), num(None)
    ('1,234,567', '1,017.2', '0.0001235', '3', '—')
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "—"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    a = abs(x)
    if x.is_integer() and a < 1e15:
        return f"{int(x):,}"
    if a >= 1e15 or a < 1e-4:
        return f"{x:.{digits - 1}e}"
    if a >= 1000:
        return f"{x:,.1f}"
    return f"{x:.{digits}g}"


def pct(value: Any, digits: int = 1) -> str:
    """A share as a percentage; tiny non-zero shares do not round to 0.

    >>> pct(0.1234), pct(0.00001), pct(0), pct(None)
    ('12.3%', '<0.1%', '0%', '—')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if value == 0:
        return "0%"
    floor = 10.0 ** -(digits + 2)
    if 0 < abs(value) < floor:
        return f"<{floor:.{digits}%}"
    return f"{value:.{digits}%}"


def when(value: datetime | float | None) -> str:
    """A moment (a datetime or epoch seconds) as UTC text."""
    if value is None:
        return "—"
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(float(value), tz=UTC)
    elif value.tzinfo is not None:
        value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    return text.removesuffix(" 00:00:00") + (" UTC" if value.tzinfo else "")
