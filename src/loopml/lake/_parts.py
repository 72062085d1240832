"""A table version as its Parquet files, each read alone: the partitions that stages work on
one at a time, in one process or on Dask workers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.core.errors import LakeError, first_line
from loopml.core.records import TablePart

if TYPE_CHECKING:
    import polars as pl


def parts_of(dt: Any, table: str) -> tuple[TablePart, ...]:
    """The files of the opened table ``dt``, in the order a read of the table gives their
    rows, with the row count and table position of each."""
    import pyarrow as pa

    actions = pa.table(dt.get_add_actions(flatten=True)).to_pydict()
    out = []
    offset = 0
    for index, (path, rows) in enumerate(zip(actions["path"], actions["num_records"],
                                             strict=True)):
        if rows is None:  # a file written without statistics: count its rows
            rows = _read(dt, table, path).height
        out.append(TablePart(table=table, version=dt.version(), path=path, index=index,
                             offset=offset, rows=int(rows)))
        offset += int(rows)
    return tuple(out)


def read_part(dt: Any, part: TablePart, columns: list[str] | None = None) -> pl.DataFrame:
    """The rows of one file of the opened table ``dt`` (at ``part.version``) with the table's
    columns and types (or only ``columns``): partition columns filled in, columns added
    after the file was written null."""
    frame = _read(dt, part.table, part.path, columns)
    if frame.height != part.rows:
        raise LakeError(
            f"{part.table}@v{part.version}: the file {part.path} holds {frame.height} rows, "
            f"the Delta log says {part.rows}.",
            hint="The table changed under its version (files rewritten by hand?); "
            "'loopml lake history' lists its commits.",
        )
    return frame


def _read(dt: Any, table: str, path: str, columns: list[str] | None = None) -> pl.DataFrame:
    import polars as pl
    import pyarrow.dataset as pds

    try:
        # the dataset knows each file's partition values and the table's schema; a dataset of
        # one of its files reads that file alone with both
        whole = dt.to_pyarrow_dataset()
        found = [f for f in whole.get_fragments() if _same_file(f.path, path)]
        if not found:
            raise LakeError(f"{table}@v{dt.version()} has no file {path}.",
                            hint="Read the parts of this very version ('Lake.parts').")
        one = pds.FileSystemDataset(found, schema=whole.schema, format=whole.format,
                                    filesystem=whole.filesystem)
        arrow = one.to_table(columns=columns)
    except LakeError:
        raise
    except Exception as exc:  # delta-rs and pyarrow raise several types for one cause
        raise LakeError(f"Reading {path} of {table}@v{dt.version()} failed: {first_line(exc)}",
                        hint="A table with deletion vectors or column mapping cannot be read "
                        "file by file; 'loopml lake optimize' rewrites its files.") from exc
    out = pl.from_arrow(arrow)
    assert isinstance(out, pl.DataFrame)
    return out


def _same_file(fragment_path: str, path: str) -> bool:
    """Whether a dataset fragment is the log's file ``path`` (fragments may name it with the
    table's folder in front, or percent-encoded)."""
    from urllib.parse import unquote

    return fragment_path == path or unquote(fragment_path).endswith("/" + unquote(path)) or (
        unquote(fragment_path) == unquote(path))
