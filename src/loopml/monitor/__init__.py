"""Data and prediction drift: reference distributions at training time, PSI per window.

>>> round(psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]), 6)
0.0
"""

from loopml.monitor._drift import check_drift, psi
from loopml.monitor._reference import build_reference

__all__ = ["build_reference", "check_drift", "psi"]
