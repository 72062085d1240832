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


def warm_up(ctx: Context) -> None:
    """Have every worker import what trials need now, while this process ingests and
    profiles, so that a fresh worker's first trial does not spend the time budget on imports.
    Nothing waits for it; a worker that fails to import fails the search later with the
    reason."""
    if ctx.config.compute.local:
        return
    from distributed import fire_and_forget

    with connect(ctx.config) as client:
        workers = list(client.scheduler_info(n_workers=-1)["workers"])
        for address in workers:
            fire_and_forget(client.submit(_imports, workers=[address], pure=False,
                                          key=f"loopml-warm-up-{uuid.uuid4().hex[:12]}"))


def _imports() -> None:
    import importlib

    for name in ("optuna", "sklearn.pipeline", "sklearn.linear_model", "loopml.train",
                 "loopml.features", "loopml.evaluate", "lightgbm", "xgboost"):
        try:
            importlib.import_module(name)
        except ImportError:  # a learner the project may not use; the search says if it does
            pass
