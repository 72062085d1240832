"""Render report records (profile, model evaluation and leaderboard, drift, validation) to
one self-contained HTML file each: plotly.js is inlined once, so a file opens offline.

>>> from loopml.core.records import ValidationReport
>>> record = ValidationReport(source="s", contract_fingerprint="ab", rows_in=3,
...                           rows_accepted=3, rows_quarantined=0, duplicates=0)
>>> "<html" in render(record)
True
"""

from loopml.reports._render import ReportError, render, write_report

__all__ = ["ReportError", "render", "write_report"]
