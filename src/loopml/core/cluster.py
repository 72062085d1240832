"""Waiting on a Dask cluster's work without waiting forever: a scheduler keeps tasks that no
worker can take waiting for one, so a cluster whose workers all died would hold a stage
indefinitely. Dask is imported only when a caller has a client."""

from __future__ import annotations

import time
from typing import Any

from loopml.core.errors import ClusterError

NO_WORKERS_S = 120.0  # a wait gives up when its cluster has had no worker this long
POLL_S = 1.0  # how often the workers are counted while waiting
_TICK_S = 0.02


def wait_done(client: Any, futures: list[Any], *, what: str) -> None:
    """Return once ``futures`` are done (finished, failed or cancelled); a ``ClusterError``
    (the futures cancelled) when the cluster has had no worker for ``NO_WORKERS_S``
    meanwhile. ``what`` names the work in the message. (Polls: ``distributed.wait`` needs
    a default client, and ours is not one.)"""
    since: float | None = None
    check = time.monotonic() + POLL_S
    while not all(f.done() for f in futures):
        time.sleep(_TICK_S)
        now = time.monotonic()
        if now < check:
            continue
        check = now + POLL_S
        if client.nthreads():
            since = None
        elif since is None:
            since = now
        elif now - since >= NO_WORKERS_S:
            client.cancel(futures)
            raise ClusterError(
                f"The Dask cluster has had no worker for {NO_WORKERS_S:.0f} s while {what} "
                "waited for one.",
                hint="Nothing was written. Start workers ('dask worker SCHEDULER_ADDRESS') "
                "and run the command again, or run with --cluster local.")
