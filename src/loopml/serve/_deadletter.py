"""Dead letters: prediction rows the log table could not take, kept as text.

``deadletter/predictions/<model>`` holds every column of the rows as text (so rows whose types
conflicted with the log table still fit one table), plus ``_reason`` (why they are here) and
``_failed_at`` (UTC). Read it with ``Lake.read`` to inspect or replay them.

When the lake itself cannot be written (unreachable, full, its permissions taken away), the
same rows go to a dead-letter file outside it, ``<serving.dead_letter_dir>/<table>.ndjson``:
one JSON object a row, appended and synced to disk before the log counts them as kept.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.core.errors import LakeCommittedError

if TYPE_CHECKING:
    import polars as pl

    from loopml.lake import Lake


def write_dead_letter(lake: Lake, table: str, batch: list[pl.DataFrame], reason: str) -> int:
    """Append ``batch`` to the dead-letter ``table`` as text with ``reason``; returns the rows.

    >>> import tempfile, polars as pl
    >>> from loopml.lake import Lake
    >>> lake = Lake(tempfile.mkdtemp())
    >>> write_dead_letter(lake, "deadletter/predictions/m", [pl.DataFrame({"x": [1.5]})], "why")
    1
    >>> lake.read("deadletter/predictions/m").select("x", "_reason").rows()
    [('1.5', 'why')]
    """
    rows = sum(f.height for f in batch)
    if rows == 0:
        return 0
    try:
        lake.append(table, _dead_letters(batch, reason),
                    metadata={"loopml.stage": "serve", "loopml.rows": str(rows)})
    except LakeCommittedError:  # written: only reading the table back failed
        pass
    return rows


def dead_letter_path(directory: str | Path, table: str) -> Path:
    """The dead-letter file of a lake table: ``deadletter/predictions/m`` ->
    ``<directory>/deadletter.predictions.m.ndjson``."""
    return Path(directory) / f"{table.replace('/', '.')}.ndjson"


def write_dead_letter_file(path: Path, batch: list[pl.DataFrame], reason: str) -> int:
    """Append ``batch`` to the dead-letter file ``path`` (NDJSON, the dead-letter table's
    columns) and sync it to disk; returns the rows.

    >>> import tempfile, polars as pl
    >>> path = Path(tempfile.mkdtemp()) / "d.ndjson"
    >>> write_dead_letter_file(path, [pl.DataFrame({"x": [1.5]})], "lake down")
    1
    >>> pl.read_ndjson(path).select("x", "_reason").rows()
    [('1.5', 'lake down')]
    """
    import polars as pl

    rows = sum(f.height for f in batch)
    if rows == 0:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = _dead_letters(batch, reason).with_columns(
        pl.col("_failed_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.6fZ"))
    with path.open("ab") as fh:
        lines.write_ndjson(fh)
        fh.flush()
        os.fsync(fh.fileno())
    return rows


def _dead_letters(batch: list[pl.DataFrame], reason: str) -> pl.DataFrame:
    import polars as pl

    return pl.concat([_as_text(f) for f in batch], how="diagonal").with_columns(
        pl.lit(reason, dtype=pl.String).alias("_reason"),
        pl.lit(datetime.now(UTC), dtype=pl.Datetime("us", "UTC")).alias("_failed_at"),
    )


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text, so rows of conflicting types share the dead-letter table."""
    import polars as pl

    out = []
    for name, dtype in frame.schema.items():
        column = frame[name]
        try:
            out.append(column.cast(pl.String))
        except pl.exceptions.PolarsError:
            out.append(pl.Series(name, [None if v is None else str(v) for v in column.to_list()],
                                 dtype=pl.String))
    return pl.DataFrame(out)
