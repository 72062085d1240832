"""Telling whether a write of served rows landed: each commit carries its batch's id.

A commit can land and still raise (``LakeCommitUnknownError``: the lake folder moved away
while delta-rs finished the commit). Writing the rows again, or dead-lettering them, would
then keep them twice. So every commit of the prediction log, of its dead-letter table and of
a dead-letter replay carries ``loopml.batch_id`` in its metadata, and before rows whose write
ended so are written anywhere else, the table's history since the version seen before the
write is searched for that id (as ingest does with ``loopml.ingest_id``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

    from loopml.lake import Lake

BATCH_TAG = "loopml.batch_id"


def new_batch_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """A write whose commit may have landed: its rows wait here until the table tells."""

    batch_id: str
    since: int | None  # the table's version before the write; None: there was no table
    frames: tuple[pl.DataFrame, ...]
    rows: int


def landed(lake: Lake, table: str, batch_id: str, since: int | None) -> bool | None:
    """Whether a commit tagged ``batch_id`` is in ``table`` after version ``since``; None
    while the lake cannot tell (it does not answer, or the table seen before is gone: a lake
    moved away reads as empty, and may come back holding the commit).

    >>> import tempfile, polars as pl
    >>> from loopml.lake import Lake
    >>> lake = Lake(tempfile.mkdtemp())
    >>> _ = lake.append("predictions/m", pl.DataFrame({"x": [1]}), metadata={BATCH_TAG: "b1"})
    >>> landed(lake, "predictions/m", "b1", None), landed(lake, "predictions/m", "b2", None)
    (True, False)
    """
    try:
        if since is not None and lake.version(table) is None:
            return None
        return lake.commit_with(table, BATCH_TAG, batch_id, since=since) is not None
    except Exception:  # noqa: BLE001 - any failure to read leaves it unknown
        return None
