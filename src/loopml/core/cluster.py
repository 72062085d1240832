"""Waiting on a Dask cluster's work without waiting forever: a scheduler keeps tasks that no
worker can take waiting for one, so a cluster whose workers all died would hold a stage
indefinitely. Dask is imported only when a caller has a client."""

from __future__ import annotations

import time
from typing import Any

from loopml.core.errors import ClusterError

NO_WORKERS_S = 120.0  # a wait gives up when its cluster has had no worker this long
POLL_S = 1.0


def wait_done(client: Any, futures: list[Any], *, what: str) -> None:
    """Return once ``futures`` are done (finished, failed or cancelled); a ``ClusterError``
    (the futures cancelled) when the cluster has had no worker for ``NO_WORKERS_S``
    meanwhile. ``what`` names the work in the message."""
    from distributed import wait

    since: float | None = None
    while True:
        try:
            wait(futures, timeout=POLL_S)
            return
        except TimeoutError:
            pass
        if client.nthreads():
            since = None
        elif since is None:
            since = time.monotonic()
        elif time.monotonic() - since >= NO_WORKERS_S:
            client.cancel(futures)
            raise ClusterError(
                f"The Dask cluster has had no worker for {NO_WORKERS_S:.0f} s while {what} "
                "waited for one.",
                hint="Nothing was written. Start workers ('dask worker SCHEDULER_ADDRESS') "
                "and run the command again, or run with --cluster local.")
