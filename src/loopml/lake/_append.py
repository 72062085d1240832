"""Writes other than ``write_deltalake``'s plain append: a fast append and a merge by key.

A fast append: the batch written as one Parquet file by Polars and committed to the Delta
log as an ``add`` action, for a batch whose columns are the table's in the table's types; a
new table is created the same way (schema and file in its first commit).

delta-rs' own writer takes about three times the CPU of Polars' for the same Parquet (it
encodes on one thread); a lake append is most of an ingest's cost. What is committed is what
``write_deltalake`` would commit: one data file, its row and null counts as statistics, the
commit's metadata, in one atomic log entry; a crash before the commit leaves an unreferenced
file that ``vacuum`` removes, as with ``write_deltalake``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from loopml.core.errors import LakeCommitUnknownError, LakeError, first_line

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

ADDED_ROWS = "loopml.added_rows"  # commit metadata: rows the commit added
ADDED_FILES = "loopml.added_files"  # and its files, when more than one (a staged append)


def append_file(dt: Any, path: str, data: pl.DataFrame, metadata: dict[str, str]) -> None:
    """Append ``data`` (already aligned to the table: its columns, order and types) to the
    open local table ``dt`` at ``path`` as one commit; ``dt`` is not brought to the new
    version, and the post-commit hooks are left to ``after_commit``."""
    add = write_file(path, data)
    with commit_step(path):
        dt.create_write_transaction([add], mode="append", schema=dt.schema(),
                                    commit_properties=_properties(metadata, data),
                                    post_commithook_properties=no_hooks())


@contextmanager
def commit_step(path: str) -> Iterator[None]:
    """Any failure of the block (the commit itself) as a ``LakeCommitUnknownError``: a commit
    can land and still raise (its log entry linked in, the temporary file not yet removed,
    when the folder is moved away), so the caller must look before writing the rows again.
    A failure before this step (opening the table, writing the data file) is a plain one."""
    try:
        yield
    except LakeError:
        raise
    except Exception as exc:
        raise LakeCommitUnknownError(
            f"Committing to {path} failed, and the commit may have landed: {first_line(exc)}",
            hint="Look for the commit's metadata in the table's history before writing the "
            "rows again.",
        ) from exc
def after_commit(dt: Any) -> None:
    """What ``write_deltalake`` does after a commit: a checkpoint every
    ``delta.checkpointInterval`` versions (100 by default), then expired log files removed.
    The commit has landed; a failure here only leaves more log files to read."""
    config = dt.metadata().configuration
    interval = int(config.get("delta.checkpointInterval") or 100)
    if dt.version() == 0 or dt.version() % interval:
        return
    try:
        dt.create_checkpoint()
        if config.get("delta.enableExpiredLogCleanup", "true") != "false":
            dt.cleanup_metadata()
    except Exception as exc:  # noqa: BLE001 - the rows are committed all the same
        log.warning("No checkpoint at version %d of %s: %s", dt.version(), dt.table_uri,
                    first_line(exc))


def create_file(path: str, data: pl.DataFrame, metadata: dict[str, str]) -> None:
    """Create the local table at ``path`` holding ``data`` (plain Delta types, see
    ``plain_type``) as its first commit: the schema and the one file in one log entry."""
    from deltalake import Schema
    from deltalake.transaction import create_table_with_add_actions

    os.makedirs(path, exist_ok=True)
    add = write_file(path, data)
    schema = Schema.from_arrow(data.head(0).to_arrow().schema)
    with commit_step(path):
        create_table_with_add_actions(path, schema, [add], mode="error",
                                      commit_properties=_properties(metadata, data))


def write_file(path: str, data: pl.DataFrame) -> Any:
    """``data`` as one Parquet file in the table's folder: its ``add`` action."""
    from deltalake.transaction import AddAction

    name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    target = os.path.join(path, name)
    data.write_parquet(target, compression="snappy", statistics=False)
    stats = {"numRecords": data.height,
             "nullCount": {c: int(n) for c, n in zip(data.columns, data.null_count().row(0),
                                                       strict=True)}}
    return AddAction(path=name, size=os.path.getsize(target), partition_values={},
                     modification_time=int(time.time() * 1000), data_change=True,
                     stats=json.dumps(stats))


def no_hooks() -> Any:
    """Post-commit hooks off: ``after_commit`` runs them once the commit is known to have
    landed, so that their failure is not mistaken for the commit's."""
    from deltalake import PostCommitHookProperties

    return PostCommitHookProperties(create_checkpoint=False, cleanup_expired_logs=False)


def _properties(metadata: dict[str, str], data: pl.DataFrame) -> Any:
    from deltalake import CommitProperties

    return CommitProperties(custom_metadata={**metadata, ADDED_ROWS: str(data.height)})


def with_metrics(commit: dict[str, Any]) -> dict[str, Any]:
    """A commit from ``DeltaTable.history`` with the operation metrics ``write_deltalake``
    records (``num_added_files``, ``num_added_rows``) also for a fast append, which records
    its row count in its metadata instead."""
    if ADDED_ROWS not in commit or commit.get("operationMetrics"):
        return commit
    out = {k: v for k, v in commit.items() if k not in (ADDED_ROWS, ADDED_FILES)}
    files = int(commit.get(ADDED_FILES, 1))
    out["operationMetrics"] = {"num_added_files": files, "num_removed_files": 0,
                               "num_added_rows": int(commit[ADDED_ROWS])}
    return out


def merge_rows(table: str, path: str, data: pl.DataFrame, keys: list[str], *,
               metadata: dict[str, str] | None, storage_options: dict[str, str] | None) -> None:
    """Upsert ``data`` (one row per key, cast to the table's types) into the table at ``path``
    by ``keys`` as one Delta MERGE commit; new columns join the schema."""
    from deltalake import CommitProperties, DeltaTable

    props = CommitProperties(custom_metadata={k: str(v) for k, v in (metadata or {}).items()})
    predicate = " AND ".join(f'target."{k}" = source."{k}"' for k in keys)
    try:
        dt = DeltaTable(path, storage_options=storage_options)
        (
            dt.merge(data.to_arrow(), predicate, source_alias="source", target_alias="target",
                     merge_schema=True, commit_properties=props)
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )
    except Exception as exc:  # delta-rs raises several types for the same cause
        raise LakeError(
            f"Merging {data.height} row(s) into {table} failed: {first_line(exc)}",
            hint="Cast the columns to the table's types, or write to a new table.",
        ) from exc
