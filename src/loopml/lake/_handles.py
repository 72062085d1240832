"""Open Delta tables kept between calls and brought up to date incrementally.

Opening a ``DeltaTable`` reads its whole log (every JSON commit since the last checkpoint); an
ingest asks for a table's version, schema, partitioning and last commit many times per chunk.
``Handles`` keeps one open table per path and brings it to the latest version by reading only
the log entries written since (``update_incremental``), under a lock per path, so that a handle
is never used by two threads at once. A local table removed, or removed and made again at the
same path, is opened afresh. Only the latest version is kept: reads of an older version and
lazy scans open their own table.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Handles:
    def __init__(self, *, local: bool):
        self._local = local
        self._tables: dict[str, tuple[Any, Any]] = {}  # path -> (table, _identity)
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def latest(self, path: str, open_: Callable[[], Any]) -> Iterator[Any]:
        """The table at ``path`` at its latest version (``open_()`` the first time, and when
        the kept one cannot be updated or its folder is gone), or None when there is none;
        held alone by the caller until the block ends. A block that raises drops the handle,
        so the next call opens the table afresh."""
        with self._guard:
            lock = self._locks.setdefault(path, threading.RLock())
        with lock:
            dt, made = self._tables.get(path, (None, None))
            if dt is not None:
                try:
                    if made is None or made != self._identity(path):  # removed or made anew
                        raise FileNotFoundError(path)
                    dt.update_incremental()
                except Exception:
                    dt = None
            if dt is None:
                self._tables.pop(path, None)
                dt = open_()
                if dt is not None:
                    self._tables[path] = (dt, self._identity(path))
            try:
                yield dt
            except BaseException:
                self._tables.pop(path, None)
                raise

    def _identity(self, path: str) -> Any:
        """What tells a local table from one removed and made again at the same path: its
        first log entry's inode and modification time (None when that entry is gone, e.g.
        cleaned up after a checkpoint: then the table is opened afresh each time)."""
        if not self._local:
            return "remote"
        try:
            first = os.stat(os.path.join(path, "_delta_log", f"{0:020d}.json"))
        except OSError:
            return None
        return (first.st_ino, first.st_mtime_ns)
