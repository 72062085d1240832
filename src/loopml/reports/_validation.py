"""The validation report: where the rows of one ingest went, and which rules they broke."""

from __future__ import annotations

from typing import Any

from loopml.core.records import ValidationReport
from loopml.reports._figures import GREY, ORANGE, bars
from loopml.reports._page import STATUS_COLORS, Page, num, pct, render_page


def render_validation(report: ValidationReport, *, title: str | None = None) -> str:
    """The validation report of ``report`` as one HTML page."""
    page = Page()
    rows_in = report.rows_in
    share = (lambda n: n / rows_in) if rows_in else (lambda n: 0.0)
    violations = sorted(report.violations, key=lambda v: (-v.rows, v.column, v.rule))
    status = "warn" if report.rows_quarantined else "ok"
    context: dict[str, Any] = {
        "kind": "validation",
        "title": title or f"Validation of {report.source}",
        "subtitle": f"contract {report.contract_fingerprint[:12]}",
        "status": status,
        "overview": [
            ("Rows in", num(rows_in), ""),
            ("Accepted", num(report.rows_accepted), pct(share(report.rows_accepted))),
            ("Quarantined", num(report.rows_quarantined), pct(share(report.rows_quarantined))),
            ("Duplicates", num(report.duplicates), pct(share(report.duplicates))),
            ("Warned", num(report.warned_rows), pct(share(report.warned_rows))),
            ("Rules broken", num(len(violations)), ""),
            ("Quality score", f"{report.quality_score:g}", "of 100"),
        ],
        "flow_plot": _flow_plot(page, report),
        "violation_plot": _violation_plot(page, violations) if violations else None,
        "violations": [
            {"column": v.column, "rule": v.rule if v.severity == "error" else f"{v.rule} (warn)",
             "rows": num(v.rows), "share": pct(share(v.rows)),
             "example": "" if v.example is None else v.example}
            for v in violations
        ],  # fmt: skip
        "coerced": report.coerced_columns,
        "extra": report.extra_columns,
        "cleaning": _cleaning(report),
    }
    context["nav"] = [("overview", "Overview"), ("violations", "Violations")]
    if context["cleaning"] is not None:
        context["nav"].append(("cleaning", "Cleaning"))
    return render_page("validation.html.j2", page, **context)


def _cleaning(report: ValidationReport) -> dict[str, Any] | None:
    """The cleaning log as a table: per step and column, what changed and how often."""
    log = report.cleaning
    if log is None:
        return None
    return {
        "steps": [(step, num(n)) for step, n in log.by_step().items()],
        "changes": [
            {"step": c.step, "column": c.column, "action": c.action, "rows": num(c.rows),
             "examples": [f"{before!r} → {after!r} ×{n:,}" for before, after, n in c.examples]}
            for c in log.changes
        ],  # fmt: skip
    }


def _flow_plot(page: Page, report: ValidationReport) -> Any:
    labels = ["rows in", "accepted", "quarantined", "duplicates"]
    values = [report.rows_in, report.rows_accepted, report.rows_quarantined, report.duplicates]
    colors = [GREY, STATUS_COLORS["ok"], STATUS_COLORS["alert"], ORANGE]
    hover = [f"{label}: {v:,}" for label, v in zip(labels, values)]
    fig = bars(labels, values, horizontal=True, color=colors, hover=hover, x_title="rows",
               title="Where the rows went")  # fmt: skip
    return page.plot(fig)


def _violation_plot(page: Page, violations: list) -> Any:
    shown = violations[:30]
    labels = [f"{v.column} · {v.rule}" for v in shown]
    fig = bars(labels, [v.rows for v in shown], horizontal=True, color=STATUS_COLORS["alert"],
               title="Rows breaking each rule", x_title="rows")  # fmt: skip
    return page.plot(fig)
