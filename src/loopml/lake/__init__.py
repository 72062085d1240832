"""Versioned Delta Lake tables: raw, clean, quarantine, predictions, feedback, monitoring and
dead letters; appends, overwrites and upserts (``merge``) are each one atomic commit.

>>> import tempfile, polars as pl
>>> lake = Lake(tempfile.mkdtemp())
>>> lake.append("raw/demo", pl.DataFrame({"x": [1, 2]}))
TableRef(name='raw/demo', version=0)
>>> lake.read("raw/demo", version=0).height
2
"""

from loopml.lake._lake import Lake, table_name

__all__ = ["Lake", "table_name"]
