"""One commit of many batches: each batch is written as a data file when it comes, and all
files are committed to the table as one version at the end (``Lake.staged``), so a long
writer holds one batch at a time yet readers see all of its rows or none. Files written
before a failure are deleted; files a crash left behind are in no version, and ``vacuum``
removes them as it removes any unreferenced file."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from loopml.core.errors import LakeError
from loopml.lake._append import ADDED_FILES, ADDED_ROWS, commit_step, no_hooks, write_file
from loopml.lake._types import aligned

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.records import TableRef
    from loopml.lake._lake import Lake


class StagedAppend:
    """Batches for ``table``, committed together by ``commit`` (or by leaving the ``with``
    block without an error; an error deletes what was written).

    On a local lake, a batch whose columns fit the existing table (a new table is first made
    with the first batch's columns and no rows) becomes a file at once; other batches (an
    object-store lake, a column the table lacks) are held in memory and written in the commit.

    >>> import tempfile, polars as pl
    >>> from loopml.lake import Lake
    >>> lake = Lake(tempfile.mkdtemp())
    >>> with lake.staged("predictions/m", metadata={"loopml.stage": "predict"}) as stage:
    ...     stage.add(pl.DataFrame({"x": [1, 2]}))
    ...     stage.add(pl.DataFrame({"x": [3]}))
    ...     lake.rows("predictions/m")  # nothing visible before the commit
    0
    >>> lake.rows("predictions/m"), len(lake.history("predictions/m"))
    (3, 2)
    """

    def __init__(self, lake: Lake, table: str, metadata: dict[str, str] | None = None):
        self.lake, self.table = lake, table
        self.metadata = {k: str(v) for k, v in (metadata or {}).items()}
        self._path = lake.path(table)
        self._adds: list[Any] = []
        self._held: list[pl.DataFrame] = []
        self._rows = 0
        self._done = False
        self._schema: dict[str, Any] | None = None  # the table's, once looked up

    def __enter__(self) -> StagedAppend:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()

    def add(self, frame: pl.DataFrame) -> None:
        """Write ``frame``'s rows (invisible until the commit)."""
        if self._done:
            raise LakeError(f"The staged append to {self.table} is already committed.")
        if frame.height == 0:
            return
        self._rows += frame.height
        fits = None
        if self.lake._local and not self._held:  # noqa: SLF001 - the lake's own helper
            if self._schema is None:
                self._schema = self._table_schema(frame)
            if self._schema:
                fits = aligned(frame, self._schema)
        if fits is None:
            self._held.append(frame)
        else:
            self._adds.append(write_file(self._path, fits))

    def commit(self) -> TableRef | None:
        """One commit of every batch (None when no row came)."""
        if self._done:
            raise LakeError(f"The staged append to {self.table} is already committed.")
        self._done = True
        if not self._rows:
            return None
        if self._held:  # also the staged files' rows: one commit all the same
            import polars as pl

            frames = [*(self._read_back()), *self._held]
            self.discard()
            return self.lake.append(self.table, pl.concat(frames, how="diagonal_relaxed"),
                                    metadata=self.metadata)
        from deltalake import CommitProperties, DeltaTable

        dt = DeltaTable(self._path)
        meta = {**self.metadata, ADDED_ROWS: str(self._rows), ADDED_FILES: str(len(self._adds))}
        with commit_step(self._path):
            dt.create_write_transaction(self._adds, mode="append", schema=dt.schema(),
                                        commit_properties=CommitProperties(custom_metadata=meta),
                                        post_commithook_properties=no_hooks())
        return self.lake._committed(self.table, self._path, dt, self._rows)  # noqa: SLF001

    def discard(self) -> None:
        """Delete the files written so far; nothing is committed."""
        self._done = True
        for add in self._adds:
            try:
                os.remove(os.path.join(self._path, add.path))
            except OSError:
                pass  # vacuum removes what is left
        self._adds = []

    def _table_schema(self, first: pl.DataFrame) -> dict[str, Any]:
        """The table's schema (made from ``first``'s columns, with no rows, when there is no
        table yet); empty for a partitioned table, whose batches are held instead."""
        if not self.lake.exists(self.table):
            self.lake.append(self.table, first.head(0), metadata=self.metadata)
        if self.lake.partition_columns(self.table):
            return {}
        return self.lake._existing_schema(self._path) or {}  # noqa: SLF001

    def _read_back(self) -> list[pl.DataFrame]:
        import polars as pl

        return [pl.read_parquet(os.path.join(self._path, a.path)) for a in self._adds]
