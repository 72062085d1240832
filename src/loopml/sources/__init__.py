"""Reading data sources into Polars frames with provenance.

Files: CSV/TSV, Parquet, NDJSON and JSON arrays, as one file, a folder or a glob. CSV is read
as text (lossless); ``quality`` converts it to the contract's types.

>>> import tempfile, pathlib
>>> from loopml.core.config import SourceConfig
>>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.csv").write_text("x,y\\n1,a\\n2,b\\n")
>>> read_source(SourceConfig(name="demo", path="a.csv"), base_dir=d).frame.height
2
"""

from loopml.sources._files import read_source, resolve_files

__all__ = ["read_source", "resolve_files"]
