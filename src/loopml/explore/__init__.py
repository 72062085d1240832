"""Profile a clean table: distributions, missingness, target relationships, correlations and
warnings, as a ``Profile`` record that ``loopml.reports`` renders.

>>> import polars as pl
>>> p = profile(pl.DataFrame({"a": [1, 2, 3, 4]}), source="demo", target=None, task="clustering")
>>> p.rows, p.columns[0].stats["mean"]
(4, 2.5)
"""

from loopml.explore._profile import profile

__all__ = ["profile"]
