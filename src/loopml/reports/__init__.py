"""Render report records (profile, model evaluation and leaderboard, drift, validation) to
one HTML file each. ``render`` inlines plotly.js (a self-contained page); ``write_report``
writes one shared ``plotly-<version>.min.js`` per folder and points the pages at it, so
reports stay small and still open offline.

>>> from loopml.core.records import ValidationReport
>>> record = ValidationReport(source="s", contract_fingerprint="ab", rows_in=3,
...                           rows_accepted=3, rows_quarantined=0, duplicates=0)
>>> "<html" in render(record)
True
"""

from loopml.reports._render import ReportError, render, write_report

__all__ = ["ReportError", "render", "write_report"]
