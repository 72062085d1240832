"""Reading data sources into Polars frames with provenance.

Every source kind (``file``, ``sql``, ``http``, ``mqtt``, ``media``) is read by
``read_chunks``: an iterator of ``Chunk`` records, each with the rows it read and the
source's cursor after it. The ingest commits one chunk at a time and stores the cursor only
once the chunk is in the lake, so a crash never skips rows and the next ingest starts where the
last committed chunk ended.

Files: CSV/TSV, Parquet, NDJSON and JSON arrays, as one file, a folder or a glob, plain or
.gz/.zst, read in batches of ``batch_rows``. CSV is read as text (lossless; ``quality`` converts
it to the contract's types), its delimiter, encoding and header detected; a line with the wrong
number of fields is rejected with its line number instead of failing the file. JSON objects are
flattened to ``a.b`` columns, arrays kept as lists or exploded. An ``s3://`` path reads its
objects through local copies.

SQL: a table or a query of PostgreSQL, MariaDB/MySQL or SQLite by URL, read in chunks,
incremental by a watermark column; ``read_sample`` gives a bounded sample to infer a contract.

>>> import tempfile, pathlib
>>> from loopml.core.config import FileSource
>>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.csv").write_text("x,y\\n1,a\\n2,b\\n")
>>> read_source(FileSource(name="demo", path="a.csv"), base_dir=d).frame.height
2
"""

from loopml.sources._dispatch import read_chunks, read_sample
from loopml.sources._files import read_source, resolve_files

__all__ = ["read_chunks", "read_sample", "read_source", "resolve_files"]
