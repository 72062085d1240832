"""Training on a Dask cluster: the search's trials on the workers through an Optuna storage
in the catalog's PostgreSQL, LightGBM / XGBoost final fits by the workers together, and a
catalog event saying where training ran.

With ``compute.cluster: local`` nothing here imports Dask: the search runs in this process.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from loopml.pipeline._cluster import connect

if TYPE_CHECKING:
    from loopml.core.records import TrainResult
    from loopml.pipeline._context import Context
    from loopml.train import SharedSearch


@contextmanager
def shared_search(ctx: Context, run_id: str | None) -> Iterator[SharedSearch | None]:
    """The cluster a search may use (None for ``compute.cluster: local``): its client, and
    the catalog's database as the Optuna storage, with studies named
    ``loopml-<run_id>-<learner>``."""
    if ctx.config.compute.local:
        yield None
        return
    from loopml.train import SharedSearch

    with connect(ctx.config) as client:  # checks first that the catalog is PostgreSQL
        yield SharedSearch(
            client=client, address=ctx.config.compute.cluster,
            storage=ctx.catalog.url.render_as_string(hide_password=False),
            study_prefix=f"loopml-{run_id or 'adhoc-' + uuid.uuid4().hex[:12]}")


def log_training(ctx: Context, run_id: str | None, result: TrainResult) -> None:
    """A ``train`` event for the run: where the search ran (``local`` or the scheduler), the
    trials each worker ran, the Optuna studies and which members the workers fitted."""
    board = result.leaderboard
    where: dict[str, Any] = result.cluster or {}
    per_worker = dict(where.get("trials_per_worker", {}))
    trials = sum(c.origin != "ensemble" for c in board.candidates)
    ctx.catalog.log_event("train", run_id or ctx.config.name, {
        "cluster": where.get("address", "local"),
        "workers": len(per_worker),
        "trials_per_worker": per_worker,
        "trials_here": where.get("trials_here", trials),
        "trials": trials,
        "studies": list(where.get("studies", [])),
        "final_fit": dict(where.get("final_fit", {})),
        "seconds": board.seconds,
    })
