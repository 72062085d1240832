"""``render`` and ``write_report``: any report record to one HTML file (``render``:
self-contained; ``write_report``: sharing one plotly.js per folder)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loopml.core.errors import LoopmlError
from loopml.core.records import (
    DriftReport,
    Evaluation,
    Leaderboard,
    Profile,
    ValidationReport,
    WindowReport,
)


class ReportError(LoopmlError, TypeError):
    headline = "The report could not be rendered"


def render(
    record: Any,
    *,
    title: str | None = None,
    leaderboard: Leaderboard | None = None,
    events: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """Render a report record as one self-contained HTML page (plotly.js inlined once).

    ``record`` is a ``Profile``, an ``Evaluation`` (optionally with the ``leaderboard`` of
    the search that produced the model), a ``Leaderboard`` alone, a ``DriftReport``, a
    ``ValidationReport``, or a sequence of ``WindowReport`` (the monitoring report, with the
    catalog ``events`` of the loop marked on its time axis).

    >>> from loopml.core.records import ValidationReport
    >>> html = render(ValidationReport(source="flights", contract_fingerprint="ab12",
    ...     rows_in=10, rows_accepted=9, rows_quarantined=1, duplicates=0))
    >>> html.startswith("<!doctype html>"), "Validation of flights" in html
    (True, True)
    """
    if leaderboard is not None and not isinstance(record, Evaluation):
        raise ReportError(
            f"A leaderboard goes with an Evaluation, not a {type(record).__name__}.",
            hint="Call render(evaluation, leaderboard=leaderboard), or render(leaderboard).",
        )
    if isinstance(record, WindowReport) or (
        isinstance(record, Sequence) and record and all(isinstance(r, WindowReport) for r in record)
    ):
        from loopml.reports._monitoring import render_monitoring

        windows = [record] if isinstance(record, WindowReport) else list(record)
        return render_monitoring(windows, events=events or (), title=title)
    if events is not None:
        raise ReportError(
            f"Events go with monitoring windows, not a {type(record).__name__}.",
            hint="Call render(window_reports, events=events).",
        )
    if isinstance(record, Profile):
        from loopml.reports._profile import render_profile

        return render_profile(record, title=title)
    if isinstance(record, Evaluation | Leaderboard):
        from loopml.reports._model import render_model

        if isinstance(record, Leaderboard):
            return render_model(None, leaderboard=record, title=title)
        return render_model(record, leaderboard=leaderboard, title=title)
    if isinstance(record, DriftReport):
        from loopml.reports._drift import render_drift

        return render_drift(record, title=title)
    if isinstance(record, ValidationReport):
        from loopml.reports._validation import render_validation

        return render_validation(record, title=title)
    raise ReportError(
        f"There is no report for a {type(record).__name__}.",
        hint="Render a Profile, Evaluation, Leaderboard, DriftReport, ValidationReport or a "
        "list of WindowReports.",
    )


def write_report(
    record: Any, path: str | Path, *, assets: str | Path | None = None, **kwargs: Any
) -> Path:
    """Render ``record`` (see ``render``; ``kwargs`` go to it) and write it to ``path``,
    creating the folder. Returns the path written.

    The page does not inline plotly.js: it loads the one shared copy
    ``plotly-<version>.min.js`` in ``assets`` (default: the report's folder; a project
    passes its reports folder), written there once. Keep that file beside the reports and
    they open offline.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from loopml.core.records import ValidationReport
    >>> report = ValidationReport(source="s", contract_fingerprint="ab", rows_in=1,
    ...                           rows_accepted=1, rows_quarantined=0, duplicates=0)
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_report(report, folder / "run-1" / "v.html", assets=folder).stat().st_size < 100_000
    True
    >>> [p.name for p in folder.glob("plotly-*.min.js")] != []
    True
    """
    from loopml.reports._page import loading_plotly_from, shared_plotly

    path = Path(path)
    script = shared_plotly(Path(assets) if assets is not None else path.parent)
    with loading_plotly_from(script, path):
        html = render(record, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
