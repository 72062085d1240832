"""Opening a report in headless Chromium (Debian's; Playwright never downloads a browser)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# a plot counts as drawn when its SVG holds a trace: bars, lines, points or a heatmap image
DRAWN = """() => Array.from(document.querySelectorAll('[data-figure]')).map(el => ({
    id: el.id,
    svg: el.classList.contains('js-plotly-plot') && !!el.querySelector('.main-svg'),
    marks: el.querySelectorAll('.trace .point, .trace path.js-line, .hm image').length,
}))"""


@dataclass
class Opened:
    errors: list[str]  # page errors and console errors
    remote: list[str]  # requests that tried to leave the file (blocked)
    drawn: list[dict[str, Any]]  # one entry per figure placeholder

    @property
    def undrawn(self) -> list[str]:
        return [d["id"] for d in self.drawn if not d["svg"] or d["marks"] == 0]


def open_report(browser: Any, path: Path, screenshot: Path | None = None) -> Opened:
    """Load a report from disk with the network blocked and report what it drew."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    remote: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        "file:") else (remote.append(route.request.url), route.abort()))  # fmt: skip
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function("document.body.dataset.plotsReady !== undefined", timeout=60_000)
    drawn = page.evaluate(DRAWN)
    if screenshot is not None:
        page.screenshot(path=screenshot, full_page=True)
    page.close()
    return Opened(errors=errors, remote=remote, drawn=drawn)
