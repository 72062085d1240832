"""The row hashes of a clean table, held in memory from one chunk of an ingest to the next.

Finding the duplicates of earlier ingests looks up each chunk's row hashes in the clean table.
Scanning the table's hash column for every chunk costs the table's size per chunk: quadratic
in the rows of a long ingest. Instead the hashes of the table at the version a chunk is routed
against are read once, kept as a few sorted arrays per bucket of hashes (8 bytes a row), and
extended with the hashes each append commits, so a chunk costs its own size (binary search).

What is held is tied to one table version, named by the version and its commit (the ingest id
it carries, or its time): a lookup at any other version, or after a commit that did not go
through ``remember`` (a merge by key, an optimize, another process), reads the table again.
Tables above ``MAX_ROWS`` rows are scanned per chunk as before (memory stays bounded).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from loopml.lake import Lake

MAX_ROWS = 50_000_000  # 400 MB of hashes; a larger table is scanned per chunk
_TABLES = 4  # tables held at once (least recently used dropped)
_BUCKETS = 64  # by a hash's top bits; each bucket's sorted runs merge on their own
_SHIFT = 64 - (_BUCKETS.bit_length() - 1)  # a key >> _SHIFT is its bucket


@dataclass(slots=True)
class _Held:
    """Hashes as unsigned keys in 64 buckets by their top bits, each bucket a few sorted
    runs: merging runs rewrites one bucket, about 1/64 of what is held, so holding n hashes
    costs 8n bytes and a little more while a merge runs (one sorted array would need its
    whole size twice over for each merge)."""

    identity: tuple[int, Any]  # (version, the commit's ingest id or time)
    buckets: list[list[np.ndarray]] = field(
        default_factory=lambda: [[] for _ in range(_BUCKETS)])  # each run sorted, largest first

    @property
    def rows(self) -> int:
        return sum(len(run) for bucket in self.buckets for run in bucket)

    def runs(self) -> int:
        """The most sorted runs of any bucket."""
        return max(len(bucket) for bucket in self.buckets)

    def add(self, hashes: np.ndarray) -> None:
        """Keep ``hashes`` too: in each bucket, runs merge while the newest is at least half
        the one before it, so there are O(log n) of them and each hash is merged O(log n)
        times (a stable sort of two sorted runs is a merge)."""
        import numpy as np

        keys, bounds = _split(np.sort(_keys(hashes)))
        for bucket, lo, hi in zip(self.buckets, bounds[:-1], bounds[1:], strict=True):
            if hi == lo:
                continue
            bucket.append(keys[lo:hi].copy())  # a copy: a view would hold the whole chunk
            while len(bucket) > 1 and 2 * len(bucket[-1]) >= len(bucket[-2]):
                last = bucket.pop()
                bucket[-1] = np.sort(np.concatenate([bucket[-1], last]), kind="stable")

    def found(self, hashes: np.ndarray) -> np.ndarray:
        import numpy as np

        asked = _keys(hashes)
        order = np.argsort(asked)
        keys, bounds = _split(asked[order])
        hit = np.zeros(len(keys), dtype=bool)
        for bucket, lo, hi in zip(self.buckets, bounds[:-1], bounds[1:], strict=True):
            if hi == lo:
                continue
            for run in bucket:
                at = np.minimum(np.searchsorted(run, keys[lo:hi]), len(run) - 1)
                hit[lo:hi] |= run[at] == keys[lo:hi]
        out = np.empty(len(keys), dtype=bool)
        out[order] = hit
        return out


def _keys(hashes: np.ndarray) -> np.ndarray:
    """Hashes (64-bit, signed or not) as unsigned keys, in the same order for every caller."""
    import numpy as np

    return np.ascontiguousarray(hashes).view(np.uint64)


def _split(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``keys`` and where each bucket's keys start (and the last one ends)."""
    import numpy as np

    edges = np.arange(1, _BUCKETS, dtype=np.uint64) << np.uint64(_SHIFT)
    inner = np.searchsorted(keys, edges)
    return keys, np.concatenate(([0], inner, [len(keys)]))


_lock = threading.Lock()
_held: OrderedDict[str, _Held] = OrderedDict()


def lookup(lake: Lake, table: str, version: int, scan: pl.LazyFrame
           ) -> Callable[[pl.Series], pl.Series]:
    """A function giving which of some row hashes the table holds at ``version`` (the table
    exists and has a ``_row_hash`` column; ``scan`` reads it at that version)."""
    import polars as pl

    from loopml.quality import ROW_HASH

    def by_scan(hashes: pl.Series) -> pl.Series:  # streams the one column: bounded memory
        found = scan.select(ROW_HASH).filter(pl.col(ROW_HASH).is_in(hashes.implode()))
        return found.collect(engine="streaming")[ROW_HASH]

    identity = _identity(lake, table, version)
    if identity is None:
        return by_scan
    key = lake.path(table)
    with _lock:
        held = _held.get(key)
        if held is not None and held.identity == identity:
            _held.move_to_end(key)
        else:
            held = None
    if held is None:
        rows = scan.select(pl.len()).collect().item()
        if rows > MAX_ROWS:
            return by_scan
        column = scan.select(ROW_HASH).collect(engine="streaming")[ROW_HASH]
        held = _Held(identity=identity)
        held.add(column.drop_nulls().to_numpy())
        _keep(key, held)

    def from_memory(hashes: pl.Series) -> pl.Series:
        values = hashes.drop_nulls()
        return values.filter(pl.Series(held.found(values.to_numpy())))

    return from_memory


def remember(lake: Lake, table: str, *, before: int | None, after: int, ingest_id: str,
             hashes: pl.Series) -> None:
    """The append of ``hashes`` made version ``after`` (carrying ``ingest_id``) from
    ``before``: what is held for ``before`` now stands for ``after`` (a new table: held from
    its first version)."""
    key = lake.path(table)
    values = hashes.drop_nulls().to_numpy()
    with _lock:
        held = _held.get(key)
        if before is None and after == 0:
            held = _Held(identity=(after, ingest_id))
            held.add(values)
            _held[key] = held
        elif (held is not None and held.identity[0] == before and after == before + 1
              and held.rows + len(values) <= MAX_ROWS):
            held.add(values)
            held.identity = (after, ingest_id)
            _held.move_to_end(key)
        else:
            _held.pop(key, None)
        while len(_held) > _TABLES:
            _held.popitem(last=False)


def forget(lake: Lake, table: str) -> None:
    with _lock:
        _held.pop(lake.path(table), None)


def _keep(key: str, held: _Held) -> None:
    with _lock:
        _held[key] = held
        _held.move_to_end(key)
        while len(_held) > _TABLES:
            _held.popitem(last=False)


def _identity(lake: Lake, table: str, version: int) -> tuple[int, Any] | None:
    """(version, its commit's ingest id or time) when ``version`` is the table's latest,
    else None (an older version is read by scanning, as before)."""
    from loopml.pipeline._commit import TAG

    try:
        newest = lake.history(table, limit=1)
    except Exception:  # noqa: BLE001 - no history: scan
        return None
    if not newest or int(newest[0].get("version", -1)) != version:
        return None
    return version, newest[0].get(TAG) or newest[0].get("timestamp")
