"""Windows of the prediction log watched: data and prediction drift against the training
reference (PSI, Kolmogorov–Smirnov, chi-squared, Jensen–Shannon, Wasserstein, a domain
classifier, data quality), realised and estimated performance, and concept drift.

>>> round(psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]), 6)
0.0
"""

from loopml.monitor._cbpe import build_calibration
from loopml.monitor._concept import ADWIN, PageHinkley, concept_drift
from loopml.monitor._drift import check_drift, psi
from loopml.monitor._reference import build_reference
from loopml.monitor._window_report import check_window, history_rows
from loopml.monitor._windows import split_windows

__all__ = [
    "ADWIN",
    "PageHinkley",
    "build_calibration",
    "build_reference",
    "check_drift",
    "check_window",
    "concept_drift",
    "history_rows",
    "psi",
    "split_windows",
]
