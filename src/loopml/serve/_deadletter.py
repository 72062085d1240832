"""Dead letters: prediction rows the log table could not take, kept as text.

``deadletter/predictions/<model>`` holds every column of the rows as text (so rows whose types
conflicted with the log table still fit one table), plus ``_reason`` (why they are here),
``_failed_at`` (UTC), ``_batch_id`` (the id of the rows' batch: its commits to the log table,
if one landed after all, carry it as ``loopml.batch_id``) and ``_since`` (the log table's
version before the batch's write, where to start looking for that commit). Read it with
``Lake.read`` to inspect the rows.

When the lake itself cannot be written (unreachable, full, its permissions taken away), the
same rows go to a dead-letter file outside it, ``<serving.dead_letter_dir>/<table>.ndjson``:
one JSON object a row, appended and synced to disk before the log counts them as kept.
``replay_dead_letter_file`` appends its rows back to the log table once the lake is back,
skipping each batch the table already holds.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.errors import (
    LakeCommittedError,
    LakeCommitUnknownError,
    ServeError,
    first_line,
)
from loopml.serve._attempt import BATCH_TAG, landed, new_batch_id

if TYPE_CHECKING:
    from collections.abc import Iterator

    import polars as pl

    from loopml.lake import Lake


def write_dead_letter(lake: Lake, table: str, batch: list[pl.DataFrame], reason: str, *,
                      batch_id: str, since: int | None = None) -> int:
    """Append ``batch`` to the dead-letter ``table`` as text with ``reason``, the batch's id
    and ``since`` (see the module); returns the rows. Raises ``LakeError`` unless the rows are
    in the table (a commit that may have landed is looked for first).

    >>> import tempfile, polars as pl
    >>> from loopml.lake import Lake
    >>> lake = Lake(tempfile.mkdtemp())
    >>> write_dead_letter(lake, "deadletter/predictions/m", [pl.DataFrame({"x": [1.5]})], "why",
    ...                   batch_id="b1")
    1
    >>> lake.read("deadletter/predictions/m").select("x", "_reason", "_batch_id").rows()
    [('1.5', 'why', 'b1')]
    """
    rows = sum(f.height for f in batch)
    if rows == 0:
        return 0
    before = lake.version(table)
    try:
        lake.append(table, _dead_letters(batch, reason, batch_id, since),
                    metadata={"loopml.stage": "serve", "loopml.rows": str(rows),
                              BATCH_TAG: batch_id})
    except LakeCommittedError:  # written: only reading the table back failed
        pass
    except LakeCommitUnknownError:
        if not landed(lake, table, batch_id, before):
            raise
    return rows


def dead_letter_path(directory: str | Path, table: str) -> Path:
    """The dead-letter file of a lake table: ``deadletter/predictions/m`` ->
    ``<directory>/deadletter.predictions.m.ndjson``."""
    return Path(directory) / f"{table.replace('/', '.')}.ndjson"


def write_dead_letter_file(path: Path, batch: list[pl.DataFrame], reason: str, *,
                           batch_id: str, since: int | None = None) -> int:
    """Append ``batch`` to the dead-letter file ``path`` (NDJSON, the dead-letter table's
    columns) and sync it to disk; returns the rows.

    >>> import tempfile, polars as pl
    >>> path = Path(tempfile.mkdtemp()) / "d.ndjson"
    >>> write_dead_letter_file(path, [pl.DataFrame({"x": [1.5]})], "lake down", batch_id="b1")
    1
    >>> pl.read_ndjson(path).select("x", "_reason", "_batch_id").rows()
    [('1.5', 'lake down', 'b1')]
    """
    import polars as pl

    rows = sum(f.height for f in batch)
    if rows == 0:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = _dead_letters(batch, reason, batch_id, since).with_columns(
        pl.col("_failed_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.6fZ"))
    with path.open("ab") as fh:
        lines.write_ndjson(fh)
        fh.flush()
        os.fsync(fh.fileno())
    return rows


def replay_dead_letter_file(lake: Lake, path: Path, table: str) -> tuple[int, int]:
    """Append the rows of the dead-letter file ``path`` back to ``table``, one commit per
    batch tagged with its id and each column cast back to the table's type; returns (rows
    appended, rows skipped). A batch the table already holds is skipped: its write landed
    after all, or an earlier replay appended it, so running this again appends nothing
    twice. Rows from before batch ids (no ``_batch_id``) cannot be told apart: they are
    appended on every run. The file is left as it is; remove it once replayed.

    >>> import tempfile, polars as pl
    >>> from loopml.lake import Lake
    >>> lake, path = Lake(tempfile.mkdtemp()), Path(tempfile.mkdtemp()) / "d.ndjson"
    >>> _ = lake.append("predictions/m", pl.DataFrame({"x": [0.5]}))
    >>> _ = write_dead_letter_file(path, [pl.DataFrame({"x": [1.5]})], "down", batch_id="b1")
    >>> replay_dead_letter_file(lake, path, "predictions/m")
    (1, 0)
    >>> sorted(lake.read("predictions/m")["x"].to_list())
    [0.5, 1.5]
    >>> replay_dead_letter_file(lake, path, "predictions/m")
    (0, 1)
    """
    schema = dict(lake.scan(table).collect_schema()) if lake.exists(table) else {}
    appended = skipped = 0
    for batch_id, since, rows in _batches(path):
        if batch_id is not None and lake.commit_with(table, BATCH_TAG, batch_id,
                                                     since=since) is not None:
            skipped += rows.height
            continue
        frame = _typed(rows.drop("_reason", "_failed_at", "_batch_id", "_since"), schema)
        meta = {"loopml.stage": "serve", "loopml.rows": str(rows.height),
                BATCH_TAG: batch_id or new_batch_id()}
        lake.append(table, frame, metadata=meta)
        appended += rows.height
    return appended, skipped


def dead_letter_file_status(lake: Lake, path: Path, table: str) -> dict[str, Any]:
    """What the dead-letter file ``path`` holds for ``table``: ``rows`` and ``batches`` in
    the file, ``in_table`` (rows of batches the table already holds: replayed, or their write
    landed after all), ``to_replay`` (the rest), ``reasons`` (rows by reason) and ``last``
    (when the newest row failed, ISO 8601).

    >>> import tempfile, polars as pl
    >>> from loopml.lake import Lake
    >>> lake, path = Lake(tempfile.mkdtemp()), Path(tempfile.mkdtemp()) / "d.ndjson"
    >>> _ = write_dead_letter_file(path, [pl.DataFrame({"x": [1.5, 2.5]})], "down", batch_id="b")
    >>> status = dead_letter_file_status(lake, path, "predictions/m")
    >>> status["rows"], status["to_replay"], status["reasons"]
    (2, 2, {'down': 2})
    """
    import polars as pl

    rows = batches = in_table = 0
    reasons: dict[str, int] = {}
    last = None
    for batch_id, since, letters in _batches(path):
        rows, batches = rows + letters.height, batches + 1
        if batch_id is not None and lake.commit_with(table, BATCH_TAG, batch_id,
                                                     since=since) is not None:
            in_table += letters.height
        for (reason,), group in letters.group_by("_reason", maintain_order=True):
            reasons[str(reason)] = reasons.get(str(reason), 0) + group.height
        newest = letters["_failed_at"].cast(pl.String).max()
        last = newest if last is None or (newest is not None and newest > last) else last
    return {"rows": rows, "batches": batches, "in_table": in_table,
            "to_replay": rows - in_table, "reasons": reasons, "last": last}


def _batches(path: Path) -> Iterator[tuple[str | None, int | None, pl.DataFrame]]:
    """The dead-letter file's rows by batch: (batch id, the table's version before the
    batch's write, the rows); rows from before batch ids come as one batch with id None."""
    import polars as pl

    try:
        letters = pl.read_ndjson(path, infer_schema_length=None)
    except pl.exceptions.PolarsError as exc:
        raise ServeError(
            f"The dead-letter file {path} cannot be read: {first_line(exc)}",
            hint="Each line must be one JSON object; fix or move aside a line cut short "
            "(a crash while it was written), then run this again.",
        ) from exc
    for name, dtype in (("_batch_id", pl.String), ("_since", pl.String),
                        ("_reason", pl.String), ("_failed_at", pl.String)):
        if name not in letters.columns:
            letters = letters.with_columns(pl.lit(None, dtype=dtype).alias(name))
    letters = letters.with_columns(pl.col("_batch_id").cast(pl.String),
                                   pl.col("_since").cast(pl.String).cast(pl.Int64))
    for (batch_id,), rows in letters.group_by("_batch_id", maintain_order=True):
        first = rows["_since"].min()
        since = None if first is None else int(first)  # type: ignore[arg-type]
        yield (None if batch_id is None else str(batch_id)), since, rows


def _typed(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Dead-letter text cast back to the table's types (a value that does not fit raises)."""
    import polars as pl

    out = []
    for name in frame.columns:
        text, dtype = frame[name].cast(pl.String), schema.get(name)
        if dtype is None:
            out.append(text)
        elif isinstance(dtype, pl.Datetime):
            out.append(text.str.to_datetime(time_unit=dtype.time_unit, time_zone=dtype.time_zone))
        elif dtype == pl.Date:
            out.append(text.str.to_date())
        else:
            out.append(text.cast(dtype))
    return pl.DataFrame(out)


def _dead_letters(batch: list[pl.DataFrame], reason: str, batch_id: str,
                  since: int | None) -> pl.DataFrame:
    import polars as pl

    return pl.concat([_as_text(f) for f in batch], how="diagonal").with_columns(
        pl.lit(reason, dtype=pl.String).alias("_reason"),
        pl.lit(datetime.now(UTC), dtype=pl.Datetime("us", "UTC")).alias("_failed_at"),
        pl.lit(batch_id, dtype=pl.String).alias("_batch_id"),
        pl.lit(None if since is None else str(since), dtype=pl.String).alias("_since"),
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
