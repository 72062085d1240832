"""Versioned Delta Lake tables: raw, clean, quarantine, predictions, feedback, monitoring and
dead letters; appends, overwrites and upserts (``merge``) are each one atomic commit; time
travel by version or time, partitioning, compaction and vacuum, and SQL over every table.

>>> import tempfile, polars as pl
>>> lake = Lake(tempfile.mkdtemp())
>>> lake.append("raw/demo", pl.DataFrame({"x": [1, 2]}))
TableRef(name='raw/demo', version=0)
>>> lake.read("raw/demo", version=0).height
2
"""

from loopml.lake._lake import Lake, table_name
from loopml.lake._maintain import OptimizeResult
from loopml.lake._sql import view_name
from loopml.lake._store import storage_options

__all__ = ["Lake", "OptimizeResult", "storage_options", "table_name", "view_name"]
