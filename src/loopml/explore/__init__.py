"""Profile a clean table: distributions, missingness, target relationships, correlations,
warnings, label quality (``check_labels``) and leakage suspects (``find_leaks``), as a
``Profile`` record that ``loopml.reports`` renders.

>>> import polars as pl
>>> p = profile(pl.DataFrame({"a": [1, 2, 3, 4]}), source="demo", target=None, task="clustering")
>>> p.rows, p.columns[0].stats["mean"]
(4, 2.5)
"""

from loopml.explore._labels import check_labels
from loopml.explore._leakage import find_leaks
from loopml.explore._profile import profile

__all__ = ["check_labels", "find_leaks", "profile"]
