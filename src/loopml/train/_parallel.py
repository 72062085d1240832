"""The search on the workers of a Dask cluster: the portfolio's configurations as tasks the
workers share, then one Optuna study per tuned learner in a storage every worker reaches (the
catalog's PostgreSQL), each worker asking it for trials and cross-validating them with the
threads it has until the budget (or the deterministic trial count) is spent.

The search rows, their folds and the settings reach each worker once, as one scattered
future; a worker fits the feature views of each fold once and reuses them for every trial
it runs, as the search in one process does. Dask and Optuna are imported only here, inside
the functions, and only when a cluster is configured.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import polars as pl

    from loopml.core.contract import Contract
    from loopml.train._cv import FoldCache, Problem, Trial
    from loopml.train._portfolio import Spec
    from loopml.train._search import _Runner

STUDY_SCHEMA = "loopml_optuna"  # the Optuna tables live in their own schema of the catalog
STARTUP_TRIALS = 3  # random trials of each worker's sampler before TPE models the study


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedSearch:
    """Where a search runs its trials besides this process: ``client`` (a
    ``distributed.Client``), ``storage`` (the SQLAlchemy URL of a PostgreSQL database every
    worker reaches, password included), ``study_prefix`` (studies are named
    ``<study_prefix>-<learner>``) and ``address`` (the scheduler, for the record)."""

    client: Any
    storage: str
    study_prefix: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Payload:
    """What every worker needs to run trials: sent once, as one future."""

    token: str  # the search's own name: a worker's fold views are kept under it
    frame: pl.DataFrame
    y: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    contract: Contract
    task: str
    problem: Problem
    weights: np.ndarray | None


def storage_kwargs() -> dict[str, Any]:
    """Engine arguments that put Optuna's tables in ``STUDY_SCHEMA`` (PostgreSQL).

    >>> storage_kwargs()
    {'connect_args': {'options': '-c search_path=loopml_optuna'}}
    """
    return {"connect_args": {"options": f"-c search_path={STUDY_SCHEMA}"}}


def prepare_storage(url: str) -> None:
    """Create ``STUDY_SCHEMA`` and Optuna's tables in it, once, before any worker connects
    (workers creating the tables at the same time would race)."""
    import optuna
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {STUDY_SCHEMA}"))
    finally:
        engine.dispose()
    storage = optuna.storages.RDBStorage(url, engine_kwargs=storage_kwargs())
    storage.engine.dispose()


def workers_of(client: Any) -> list[tuple[str, int]]:
    """The cluster's workers as ``(address, threads)``, in address order."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    return sorted((addr, int(w.get("nthreads", 1) or 1)) for addr, w in info.items())


class ClusterSearch:
    """The search's trials on a Dask cluster: the portfolio as one task per configuration
    (each on one thread, as many at once as the workers have threads), then the model-based
    search as one task per worker that runs trials with all of the worker's threads. Counts
    the trials each worker ran."""

    def __init__(self, shared: SharedSearch, runner: _Runner, cache: FoldCache, task: str):
        from loopml.core.errors import ClusterError

        self.shared, self.client = shared, shared.client
        self.workers = workers_of(self.client)
        if not self.workers:
            raise ClusterError(f"The Dask cluster at {shared.address} has no workers.",
                               hint="Start workers ('dask worker ADDRESS'), or run with "
                               "--cluster local.")
        payload = _Payload(token=shared.study_prefix, frame=cache.frame, y=cache.y,
                           folds=cache.folds, contract=cache.contract, task=task,
                           problem=runner.problem, weights=runner.weights)
        # the search rows reach each worker once, not once per trial: a task that holds
        # them (not scattered data, which a lost worker takes with it; a task is recomputed)
        self.data = self.client.submit(_hold, payload, pure=False,
                                       key=f"loopml-rows-{shared.study_prefix}")
        self.per_worker: dict[str, int] = {a: 0 for a, _ in self.workers}
        self.studies: list[str] = []

    def portfolio(self, runner: _Runner, cache: FoldCache, specs: list[Spec], *,
                  warm: Sequence[Spec] = ()) -> None:
        """Cross-validate ``specs`` on the workers and add them to ``runner`` in their order
        (those of ``warm`` as the champion's); past the budget's line (less the reserve) a
        configuration not yet started is left out, as in one process."""
        if runner.limit is not None:
            specs = specs[:max(0, runner.limit - len(runner.trials))]
        if not specs:
            return
        stop_at = None if runner.clock.deterministic else (
            time.time() + runner.clock.left() - runner.reserve())
        started = runner.clock.elapsed()
        futures = [
            self.client.submit(
                _spec_on_worker, self.data, spec=spec, columns=cache.columns,
                stop_at=None if i < len(self.workers) else stop_at, pure=False,
                key=f"loopml-portfolio-{self.shared.study_prefix}-{i}")
            for i, spec in enumerate(specs)
        ]
        found = self._gather(futures)
        for _, trial in found:
            if trial is not None and trial.spec in warm:
                trial.origin = "champion"
        self._add(runner, [(a, [t] if t is not None else []) for a, t in found], started)

    def tune(self, runner: _Runner, cache: FoldCache, families: list[str], budget: int | None,
             *, seed: int) -> None:
        """The model-based search of ``families`` on every worker through shared Optuna
        studies; ``budget`` is the number of trials in all (None: until the budget's line,
        less the runner's reserve)."""
        import optuna

        prepare_storage(self.shared.storage)
        direction = "maximize" if runner.problem.greater_is_better else "minimize"
        names = [f"{self.shared.study_prefix}-{fam}" for fam in families]
        storage = optuna.storages.RDBStorage(self.shared.storage, engine_kwargs=storage_kwargs())
        try:
            for name in names:
                optuna.create_study(storage=storage, study_name=name, direction=direction,
                                    load_if_exists=True)
        finally:
            storage.engine.dispose()
        self.studies += [n for n in names if n not in self.studies]
        stop_at = time.time() + runner.clock.left() - runner.reserve()
        best = runner.ok()[0] if runner.ok() else None
        first_fold = best.fold_scores[0] if best is not None and best.fold_scores else None
        started = runner.clock.elapsed()
        futures = [
            self.client.submit(
                _trials_on_worker, self.data, columns=cache.columns, studies=names,
                learners=list(families), storage=self.shared.storage, slot=slot,
                slots=len(self.workers), budget=budget,
                stop_at=None if runner.clock.deterministic else stop_at,
                first_fold=first_fold, seed=seed, workers=[address],
                allow_other_workers=True, pure=False,  # a lost worker's share runs elsewhere
                key=f"loopml-search-{self.shared.study_prefix}-{slot}")
            for slot, (address, _) in enumerate(self.workers)
        ]
        found = self._gather(futures)
        order = {fam: i for i, fam in enumerate(families)}
        trials = sorted(((a, t) for a, ts in found for t in ts),
                        key=lambda at: (order[at[1].spec.learner], _number(at[1])))
        self._add(runner, [(a, [t]) for a, t in trials], started)

    def record(self, fitted_there: dict[str, str], *, trials: int) -> dict[str, Any]:
        """What the result keeps of where the search ran: the trials each worker ran (of
        ``trials`` in all; the others, feature selection's, ran in this process), the
        studies, and the members the workers fitted together (name: how)."""
        return {"address": self.shared.address, "trials_per_worker": dict(self.per_worker),
                "trials_here": trials - sum(self.per_worker.values()),
                "studies": list(self.studies), "final_fit": dict(fitted_there)}

    def _gather(self, futures: list[Any]) -> list[Any]:
        from distributed import KilledWorker
        from distributed.client import FutureCancelledError

        from loopml.core.cluster import wait_done
        from loopml.core.errors import ClusterError, first_line

        try:
            wait_done(self.client, futures, what="the model search")
            return list(self.client.gather(futures))
        except (KilledWorker, FutureCancelledError, OSError, TimeoutError) as exc:
            raise ClusterError(
                f"The search on the Dask cluster at {self.shared.address} failed: "
                f"{first_line(exc)}",
                hint="Nothing was registered. Run again once the workers are back, or with "
                "--cluster local.") from exc

    def _add(self, runner: _Runner, found: list[tuple[str, list[Trial]]],
             started: float) -> None:
        from loopml.train._search import KEEP_FOLD_MODELS

        for address, trials in found:
            for trial in trials:
                if any(t.name == trial.name for t in runner.trials):
                    trial.name = f"{trial.name}#{len(runner.trials)}"
                runner.trials.append(trial)
                self.per_worker[address] = self.per_worker.get(address, 0) + 1
                score = "-" if trial.score is None else f"{trial.score:.4f}"
                runner.reporter.advance("search", 0.0, note=f"{trial.name} "
                                        f"{runner.problem.metric}={score} on {address}")
        runner.reporter.advance("search", runner.clock.elapsed() - started)
        for old in runner.ok()[KEEP_FOLD_MODELS:]:
            old.fold_models = []  # memory: only the leaders' fold models are kept


def _number(trial: Trial) -> int:
    return int(trial.spec.variant.rpartition("-")[2] or 0)


# ---- on the workers -------------------------------------------------------------------------


def _hold(payload: _Payload) -> _Payload:
    return payload


_CACHES: dict[tuple[str, tuple[str, ...]], FoldCache] = {}  # this worker's fold views
_CACHES_LOCK = threading.Lock()


def _fold_cache(data: _Payload, columns: tuple[str, ...]) -> FoldCache:
    """The fold views of ``columns`` for this search, fitted once per worker process (those
    of an earlier search are let go)."""
    from loopml.train._cv import FoldCache

    with _CACHES_LOCK:
        for key in [k for k in _CACHES if k[0] != data.token]:
            del _CACHES[key]
        key = (data.token, tuple(columns))
        if key not in _CACHES:
            _CACHES[key] = FoldCache(data.frame, data.y, data.folds, contract=data.contract,
                                     columns=columns, task=data.task)
        return _CACHES[key]


def _spec_on_worker(data: _Payload, *, spec: Spec, columns: tuple[str, ...],
                    stop_at: float | None) -> tuple[str, Trial | None]:
    """One portfolio configuration cross-validated on one of this worker's threads (None
    when the budget's line passed before it started)."""
    from threadpoolctl import threadpool_limits

    from loopml.train._cv import cross_fit

    address, _ = _this_worker()
    if stop_at is not None and time.time() >= stop_at:
        return address, None
    problem = replace(data.problem, threads=1)
    cache = _fold_cache(data, columns)
    with threadpool_limits(1):
        trial = cross_fit(spec, cache, problem, sample_weight=data.weights,
                          stop=lambda: stop_at is not None and time.time() >= stop_at,
                          prune=lambda i, score: False)
    trial.origin, trial.name = "portfolio", spec.name
    return address, trial


def _trials_on_worker(
    data: _Payload, *, columns: tuple[str, ...], studies: list[str], learners: list[str],
    storage: str, slot: int, slots: int, budget: int | None, stop_at: float | None,
    first_fold: float | None, seed: int,
) -> tuple[str, list[Trial]]:
    """On one worker: ask the shared studies for trials in turn and cross-validate them on
    this worker's threads until the budget is spent. Trial ``i`` of ``budget`` (counted over
    all workers) is this worker's when ``i % slots == slot``, so the workers split a fixed
    count evenly; without one, each runs trials until ``stop_at`` (epoch seconds)."""
    import optuna
    from threadpoolctl import threadpool_limits

    from loopml.train._cv import cross_fit
    from loopml.train._learners import get_learner
    from loopml.train._portfolio import Spec
    from loopml.train._search import PRUNE_FACTOR, _loss

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    address, threads = _this_worker()
    problem = replace(data.problem, threads=threads)
    cache = _fold_cache(data, columns)
    rdb = optuna.storages.RDBStorage(storage, engine_kwargs=storage_kwargs())
    loaded = [
        optuna.load_study(study_name=name, storage=rdb, sampler=optuna.samplers.TPESampler(
            seed=seed + 1000 * slot + i, n_startup_trials=STARTUP_TRIALS))
        for i, name in enumerate(studies)
    ]

    def out() -> bool:
        return stop_at is not None and time.time() >= stop_at

    def prune(i: int, score: float) -> bool:
        if i != 0 or first_fold is None:
            return False
        return _loss(score, problem) > PRUNE_FACTOR * _loss(first_fold, problem) + 0.01

    trials: list[Trial] = []
    turn = slot
    try:
        with threadpool_limits(threads):
            while not out() and (budget is None or turn < budget):
                which = turn % len(loaded)
                study, learner = loaded[which], learners[which]
                ask = study.ask()
                params = get_learner(learner).space(ask, data.task)
                spec = Spec(learner, f"optuna-{ask.number + 1}", params)
                trial = cross_fit(spec, cache, problem, sample_weight=data.weights,
                                  stop=out, prune=prune)
                trial.origin, trial.name = "search", spec.name
                if trial.status == "ok" and trial.score is not None and not math.isnan(
                        trial.score):
                    study.tell(ask, trial.score)
                else:
                    study.tell(ask, state=optuna.trial.TrialState.PRUNED)
                trials.append(trial)
                turn += slots
    finally:
        rdb.engine.dispose()
    return address, trials


def _this_worker() -> tuple[str, int]:
    """This worker's address and the threads it was given."""
    from distributed import get_worker

    worker = get_worker()
    threads = getattr(worker.state, "nthreads", None) or getattr(worker, "nthreads", 1)
    return worker.address, max(1, int(threads))
