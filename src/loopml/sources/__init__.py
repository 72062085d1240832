"""Reading data sources into Polars frames with provenance.

Every source kind (``file``, ``sql``, ``http``, ``mqtt``, ``media``) is read by
``read_chunks``: an iterator of ``Chunk`` records, each with the rows it read and the
source's cursor after it. The ingest commits one chunk at a time and stores the cursor only
once the chunk is in the lake, so a crash never skips rows and the next ingest starts where the
last committed chunk ended.

SQL: a table or a query of PostgreSQL, MariaDB/MySQL or SQLite by URL, read in chunks,
incremental by a watermark column; ``read_sample`` gives a bounded sample to infer a contract.

Files: CSV/TSV, Parquet, NDJSON and JSON arrays, as one file, a folder or a glob. CSV is read
as text (lossless); ``quality`` converts it to the contract's types.

>>> import tempfile, pathlib
>>> from loopml.core.config import FileSource
>>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.csv").write_text("x,y\\n1,a\\n2,b\\n")
>>> read_source(FileSource(name="demo", path="a.csv"), base_dir=d).frame.height
2
"""

from loopml.sources._dispatch import read_chunks, read_sample
from loopml.sources._files import read_source, resolve_files

__all__ = ["read_chunks", "read_sample", "read_source", "resolve_files"]
