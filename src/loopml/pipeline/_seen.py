"""The row hashes of a clean table, held from one chunk of an ingest to the next.

Finding the duplicates of earlier ingests looks up each chunk's row hashes in the clean table.
Scanning the table's hash column for every chunk costs the table's size per chunk: quadratic
in the rows of a long ingest. Instead the hashes of the table at the version a chunk is routed
against are read once, kept as a few sorted arrays per bucket of hashes (8 bytes a row), and
extended with the hashes each append commits, so a chunk costs its own size (binary search).

Up to ``MEMORY_KEYS`` hashes are held in memory; beyond, the sorted arrays go to files in a
temporary folder, mapped for lookups and released after each, so a table of any size costs
the process a bounded amount of memory (and the disk 8 bytes a row, freed with the index).

What is held is tied to one table version, named by the version and its commit (the ingest id
it carries, or its time): a lookup at any other version, or after a commit that did not go
through ``remember`` (a merge by key, an optimize, another process), reads the table again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import mmap

    import numpy as np
    import polars as pl

    from loopml.lake import Lake

MEMORY_KEYS = 4_000_000  # 32 MB of hashes in memory per table; more are spilled to disk
_TABLES = 4  # tables held at once (least recently used dropped)
_BUCKETS = 64  # by a hash's top bits; each bucket's sorted runs merge on their own
_SHIFT = 64 - (_BUCKETS.bit_length() - 1)  # a key >> _SHIFT is its bucket
_READ_ROWS = 1_000_000  # hashes read from the table at a time when it is first held


@dataclass(slots=True)
class _Held:
    """Hashes as unsigned keys in 64 buckets by their top bits, each bucket a few sorted
    runs: merging runs rewrites one bucket, about 1/64 of what is held, so holding n hashes
    costs 8n bytes and a little more while a merge runs (one sorted array would need its
    whole size twice over for each merge). Past ``MEMORY_KEYS`` the runs of each bucket are
    merged into one and written to ``disk``."""

    identity: tuple[int, Any]  # (version, the commit's ingest id or time)
    buckets: list[list[np.ndarray]] = field(
        default_factory=lambda: [[] for _ in range(_BUCKETS)])  # each run sorted, largest first
    disk: _Spilled | None = None

    @property
    def in_memory(self) -> int:
        return sum(len(run) for bucket in self.buckets for run in bucket)

    @property
    def rows(self) -> int:
        return self.in_memory + (self.disk.rows if self.disk is not None else 0)

    def runs(self) -> int:
        """The most sorted runs of any bucket, in memory and on disk."""
        return max(len(bucket) + (len(self.disk.buckets[b]) if self.disk is not None else 0)
                   for b, bucket in enumerate(self.buckets))

    def add(self, hashes: np.ndarray) -> None:
        """Keep ``hashes`` too: in each bucket, runs merge while the newest is at least half
        the one before it, so there are O(log n) of them and each hash is merged O(log n)
        times (a stable sort of two sorted runs is a merge)."""
        import numpy as np

        keys = np.sort(_keys(hashes))
        bounds = _bounds(keys)
        for bucket, lo, hi in zip(self.buckets, bounds[:-1], bounds[1:], strict=True):
            if hi > lo:
                bucket.append(keys[lo:hi].copy())  # a copy: a view would hold the whole chunk
                _merge_tail(bucket, len, lambda a, b: np.sort(np.concatenate([a, b]),
                                                              kind="stable"))
        if self.in_memory > MEMORY_KEYS:
            self._spill()

    def _spill(self) -> None:
        """Each bucket's runs, merged into one, to disk (after an OSError, the disk full,
        what is held is incomplete: callers drop it)."""
        import numpy as np

        disk = self.disk if self.disk is not None else _Spilled()
        for b, bucket in enumerate(self.buckets):
            if bucket:
                disk.add(b, bucket[0] if len(bucket) == 1
                         else np.sort(np.concatenate(bucket), kind="stable"))
                bucket.clear()
        self.disk = disk

    def found(self, hashes: np.ndarray) -> np.ndarray:
        import numpy as np

        asked = _keys(hashes)
        order = np.argsort(asked)
        keys = asked[order]
        bounds = _bounds(keys)
        hit = np.zeros(len(keys), dtype=bool)
        for b, (bucket, lo, hi) in enumerate(zip(self.buckets, bounds[:-1], bounds[1:],
                                                 strict=True)):
            if hi == lo:
                continue
            for run in bucket:
                hit[lo:hi] |= _holds(run, keys[lo:hi])
            if self.disk is not None:
                hit[lo:hi] |= self.disk.found(b, keys[lo:hi])
        out = np.empty(len(keys), dtype=bool)
        out[order] = hit
        return out


class _Spilled:
    """Sorted runs of hashes in files of a temporary folder, per bucket, mapped read-only.
    A lookup releases the pages it touched, so they stay in the page cache (the kernel's to
    drop) rather than in the process. The folder is removed with the object, or at exit; a
    folder its process left behind (killed) is removed by the next index made on the machine.
    """

    def __init__(self) -> None:
        import os
        import tempfile
        import weakref

        _remove_orphans(Path(tempfile.gettempdir()))
        self.folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-"))
        self.buckets: list[list[_Mapped]] = [[] for _ in range(_BUCKETS)]
        self._written = 0
        weakref.finalize(self, _remove, self.folder)

    def add(self, bucket: int, keys: np.ndarray) -> None:
        import numpy as np

        def merge(a: _Mapped, b: _Mapped) -> _Mapped:  # one bucket's two runs in memory
            merged = np.sort(np.concatenate([a.keys, b.keys]), kind="stable")
            a.remove()
            b.remove()
            return self._write(merged)

        runs = self.buckets[bucket]
        runs.append(self._write(keys))
        _merge_tail(runs, lambda run: len(run.keys), merge)

    @property
    def rows(self) -> int:
        return sum(len(run.keys) for bucket in self.buckets for run in bucket)

    def found(self, bucket: int, keys: np.ndarray) -> np.ndarray:
        import numpy as np

        hit = np.zeros(len(keys), dtype=bool)
        for run in self.buckets[bucket]:
            hit |= _holds(run.keys, keys)
            run.release()
        return hit

    def _write(self, keys: np.ndarray) -> _Mapped:
        self._written += 1
        path = self.folder / f"{self._written}.u64"
        keys.tofile(path)
        return _Mapped.open(path)


@dataclass(slots=True)
class _Mapped:
    path: Path
    map: mmap.mmap
    keys: np.ndarray  # a view of the mapping

    @classmethod
    def open(cls, path: Path) -> _Mapped:
        import mmap

        import numpy as np

        with path.open("rb") as fh:
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        return cls(path=path, map=mapped, keys=np.frombuffer(mapped, dtype=np.uint64))

    def release(self) -> None:
        """Drop the pages a lookup touched from the process (they are read again on need)."""
        import mmap

        self.map.madvise(mmap.MADV_DONTNEED)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)  # the mapping lives until its last view is gone


def _merge_tail(runs: list[Any], size: Callable[[Any], int],
                merge: Callable[[Any, Any], Any]) -> None:
    """Merge the newest run into the one before while it is at least half that one's size."""
    while len(runs) > 1 and 2 * size(runs[-1]) >= size(runs[-2]):
        last = runs.pop()
        runs[-1] = merge(runs[-1], last)


def _holds(run: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Which of sorted ``keys`` the sorted, non-empty ``run`` holds."""
    import numpy as np

    at = np.minimum(np.searchsorted(run, keys), len(run) - 1)
    return run[at] == keys


_PREFIX = "loopml-hashes-"  # then the owning process's id, a dash, and mkdtemp's letters


def _remove_orphans(tmp: Path) -> None:
    """Remove the index folders in ``tmp`` whose process no longer runs (killed before its
    finalizer ran); a folder of a running process, or of another user, is left alone."""
    import os

    for folder in tmp.glob(f"{_PREFIX}*-*"):
        pid = folder.name[len(_PREFIX):].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            _remove(folder)
        except OSError:  # running, as another user: not ours to judge
            continue


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _keys(hashes: np.ndarray) -> np.ndarray:
    """Hashes (64-bit, signed or not) as unsigned keys, in the same order for every caller."""
    import numpy as np

    return np.ascontiguousarray(hashes).view(np.uint64)


def _bounds(keys: np.ndarray) -> np.ndarray:
    """Where each bucket's keys start in the sorted ``keys`` (and the last one ends)."""
    import numpy as np

    edges = np.arange(1, _BUCKETS, dtype=np.uint64) << np.uint64(_SHIFT)
    return np.concatenate(([0], np.searchsorted(keys, edges), [len(keys)]))


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
        held = _Held(identity=identity)
        batches = scan.select(pl.col(ROW_HASH).drop_nulls()).collect_batches(
            chunk_size=_READ_ROWS, maintain_order=False)
        try:
            for batch in batches:
                held.add(batch[ROW_HASH].to_numpy())
        except OSError:  # no room to spill: scan per chunk instead
            return by_scan
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
        held = _held.pop(key, None)
        if before is None and after == 0:
            held = _Held(identity=(after, ingest_id))
        elif held is None or held.identity[0] != before or after != before + 1:
            return
        try:
            held.add(values)
        except OSError:  # no room to spill: the next lookup scans
            return
        held.identity = (after, ingest_id)
        _held[key] = held
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
