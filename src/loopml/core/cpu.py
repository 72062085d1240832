"""The cores this process may use, for every stage that sizes a pool of threads or
processes (the search's folds, clustering, serving workers)."""

from __future__ import annotations

import os


def available_threads() -> int:
    """The cores this process may use (respects CPU affinity and cgroup pinning)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
