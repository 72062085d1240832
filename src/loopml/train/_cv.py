"""Cross-validation for the search: folds over train + validation, feature views fitted once
per fold and shared by every candidate, and out-of-fold predictions for each candidate.

Folds are stratified for classification, grouped by ``problem.group_column`` when given,
and forward-chaining by time when the splits are by time (a fold never trains on rows newer
than the ones it is scored on). The test split is never seen here.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.core import labels
from loopml.core.labels import positive_index
from loopml.evaluate import metric_values

if TYPE_CHECKING:
    from collections.abc import Sequence

    import polars as pl

    from loopml.core.contract import Contract
    from loopml.train._portfolio import Spec

SMALL_ROWS = 5000  # up to this many rows: 5 folds; more: 3
BATCH_ROWS = 1000  # scoring cost is measured on a batch of this many rows


@dataclass(frozen=True, slots=True)
class Problem:
    """What every fit and score of one search shares."""

    task: str
    metric: str
    greater_is_better: bool
    classes: tuple[Any, ...] | None
    positive: int | None  # the positive class's column (binary)
    seed: int
    threads: int
    deterministic: bool

    def score(self, y: np.ndarray, output: np.ndarray) -> float:
        """The metric of predictions ``output`` (probabilities or values) against ``y``."""
        return float(metric_values(self.metric, y, output, classes=self.classes,
                                   positive=self.positive)[0])

    def better(self, a: float | None, b: float | None) -> bool:
        """Whether score ``a`` beats ``b`` (None and NaN lose)."""
        if a is None or a != a:
            return False
        if b is None or b != b:
            return True
        return a > b if self.greater_is_better else a < b


def problem_for(task: str, metric: str, better: bool, y: np.ndarray | None,
                positive_label: Any, *, seed: int, threads: int,
                deterministic: bool) -> Problem:
    classes = None
    positive = None
    if task == "classification" and y is not None:
        classes = tuple(np.unique(y).tolist())
        if len(classes) == 2:
            positive = positive_index(classes, labels.positive_label(classes, positive_label))
    return Problem(task=task, metric=metric, greater_is_better=better, classes=classes,
                   positive=positive, seed=seed, threads=threads, deterministic=deterministic)


def make_folds(
    frame: pl.DataFrame, y: np.ndarray | None, *, task: str, strategy: str,
    time_column: str | None, group_column: str | None, k: int | None, seed: int,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """The folds (row positions to fit on, to score on) and a sentence describing them."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, TimeSeriesSplit

    n = frame.height
    k = k or (5 if n <= SMALL_ROWS else 3)
    if strategy == "time":
        splitter: Any = TimeSeriesSplit(n_splits=k)
        how, groups = f"forward-chaining by {time_column or 'time'}", None
    elif group_column is not None and group_column in frame.columns:
        groups = frame[group_column].fill_null("(missing)").to_numpy()
        k = max(2, min(k, len(np.unique(groups))))
        splitter, how = GroupKFold(n_splits=k), f"grouped by {group_column}"
    else:
        groups = None
        counts = np.unique(y, return_counts=True)[1] if task == "classification" else None
        if counts is not None and counts.min() >= k:
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
            how = "stratified"
        else:
            splitter, how = KFold(n_splits=k, shuffle=True, random_state=seed), "shuffled"
    folds = [(a, b) for a, b in splitter.split(
        np.zeros(n), y if task == "classification" else None, groups)]
    return folds, f"{k}-fold {how} on {n:,} rows"


@dataclass
class Matrices:
    """One fold in one feature view: the fitted view and the fold's rows through it."""

    view: Any
    train: np.ndarray
    valid: np.ndarray


class FoldCache:
    """Feature views fitted once per fold (and view kind) and kept for every candidate."""

    def __init__(self, frame: pl.DataFrame, y: np.ndarray | None,
                 folds: list[tuple[np.ndarray, np.ndarray]], *, contract: Contract,
                 columns: Sequence[str], task: str):
        from loopml.features import categorical_count

        self.frame, self.y, self.folds = frame, y, folds
        self.contract, self.columns, self.task = contract, tuple(columns), task
        self.categorical = categorical_count(contract, self.columns)
        self._cache: dict[tuple[int, str], Matrices] = {}
        self._transform_ms: dict[str, float] = {}
        self.covered = np.zeros(frame.height, dtype=bool)
        for _, val in folds:
            self.covered[val] = True

    def get(self, i: int, view: str) -> Matrices:
        key = (i, view)
        if key not in self._cache:
            fit_idx, val_idx = self.folds[i]
            X = self.frame.select(self.columns)
            y = None if self.y is None else self.y[fit_idx]
            transformer = build_view(self.contract, self.columns, self.task, view)
            train = np.asarray(transformer.fit_transform(X[fit_idx], y), dtype=np.float64)
            valid = np.asarray(transformer.transform(X[val_idx]), dtype=np.float64)
            self._cache[key] = Matrices(transformer, train, valid)
        return self._cache[key]

    def transform_ms(self, view: str) -> float:
        """Milliseconds the first fold's ``view`` takes to transform 1,000 rows."""
        if view not in self._transform_ms:
            m = self.get(0, view)
            rows = self.folds[0][1]
            batch = self.frame.select(self.columns)[rows[np.arange(BATCH_ROWS) % len(rows)]]
            t0 = time.perf_counter()
            m.view.transform(batch)
            self._transform_ms[view] = (time.perf_counter() - t0) * 1e6 / batch.height
        return self._transform_ms[view]


def build_view(contract: Contract, columns: Sequence[str], task: str, view: str) -> Any:
    from loopml.features import build_features

    return build_features(contract, columns=list(columns), task=task, view=view)


@dataclass
class Trial:
    """A candidate's cross-validation: out-of-fold predictions, fold scores and models."""

    spec: Spec
    columns: tuple[str, ...]
    status: str = "ok"
    message: str = ""
    oof: np.ndarray | None = None
    fold_scores: list[float] = field(default_factory=list)
    fold_models: list[Any] = field(default_factory=list)  # Pipelines: fitted view + model
    fold_fit_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0  # seconds from the first fold's start to the last one's end
    rounds: list[int] = field(default_factory=list)
    predict_ms_per_1000: float | None = None
    score: float | None = None  # the metric over every out-of-fold row
    fold_rows: int = 1  # rows a fold model learns from (mean over folds)
    origin: str = "portfolio"
    name: str = ""

    @property
    def fit_s(self) -> float:
        return float(sum(self.fold_fit_s))

    @property
    def std(self) -> float | None:
        return float(np.std(self.fold_scores)) if len(self.fold_scores) > 1 else None

    def params(self) -> dict[str, Any]:
        """The parameters, with the boosting rounds early stopping chose (their mean)."""
        if not self.rounds:
            return dict(self.spec.params)
        return {**self.spec.params, "n_rounds": int(np.mean(self.rounds))}


@dataclass
class _Fold:
    """One fold's fit: its model, out-of-fold output and costs."""

    model: Any
    view: Any
    out: np.ndarray
    score: float
    fit_s: float
    rounds: int | None


def cross_fit(
    spec: Spec, cache: FoldCache, problem: Problem, *, sample_weight: np.ndarray | None,
    stop: Any, prune: Any,
) -> Trial:
    """Fit ``spec`` on every fold, keeping its out-of-fold predictions.

    Folds run side by side, one per core, each fit on one thread (on 2 cores this beats
    one fit on two threads at the fold sizes a search sees, and folds never wait on each
    other). ``stop()`` is asked before each fold after the first (the time budget): a True
    ends the trial as ``pruned``. ``prune(0, score)`` is asked when the first fold is
    scored: a True ends a candidate that is clearly worse than the best so far (it keeps
    only that fold's score, whichever other fold happened to finish, so that a run does
    not depend on timing).
    """
    from concurrent.futures import FIRST_COMPLETED, wait

    from loopml.train._learners import get_learner

    learner = get_learner(spec.learner)
    trial = Trial(spec=spec, columns=cache.columns, name=spec.name,
                  fold_rows=int(np.mean([len(f) for f, _ in cache.folds])))
    y = cache.y
    assert y is not None
    k = len(cache.folds)
    workers = max(1, min(problem.threads, k))
    threads = max(1, problem.threads // workers)
    n_out = len(problem.classes) if problem.classes is not None else 0
    done: dict[int, _Fold] = {}
    started = time.perf_counter()
    pool = fit_pool(workers)
    running: dict[Any, int] = {}
    nxt = 0
    with quiet_fits():  # set here: the filters are global, the fits run in threads
        while running or (nxt < k and trial.status == "ok"):
            while trial.status == "ok" and nxt < k and len(running) < workers:
                if nxt > 0 and stop():
                    trial.status, trial.message = "pruned", "stopped at the time budget"
                    break
                running[pool.submit(_fit_fold, learner, spec, cache, problem, nxt, threads,
                                    sample_weight)] = nxt
                nxt += 1
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                i = running.pop(future)
                try:
                    done[i] = future.result()
                except Exception as exc:  # a bad configuration must not end the search
                    if trial.status != "failed":
                        trial.status = "failed"
                        trial.message = f"{type(exc).__name__}: {exc}"[:300]
                    continue
                if i == 0 and k > 1 and trial.status == "ok" and prune(0, done[0].score):
                    trial.status = "pruned"
                    trial.message = "worse than the best on its first fold"
    trial.wall_s = time.perf_counter() - started
    if trial.status == "pruned" and trial.message.startswith("worse"):
        done = {0: done[0]}
    if trial.status == "failed":
        return trial
    folds = [done[i] for i in sorted(done)]
    trial.fold_fit_s = [f.fit_s for f in folds]
    trial.fold_scores = [f.score for f in folds]
    trial.rounds = [f.rounds for f in folds if f.rounds is not None]
    trial.fold_models = [_pipeline(f.view, f.model) for f in folds]
    if folds:
        trial.predict_ms_per_1000 = predict_ms_per_1000(
            folds[0].model, cache.get(0, learner.view).valid, problem) + cache.transform_ms(
            learner.view)
    if trial.status == "ok":
        oof = np.full((len(y), n_out) if n_out else len(y), np.nan)
        for i in sorted(done):
            oof[cache.folds[i][1]] = done[i].out
        trial.oof = oof
        covered = cache.covered
        trial.score = problem.score(y[covered], oof[covered])
    return trial


def _fit_fold(learner: Any, spec: Spec, cache: FoldCache, problem: Problem, i: int,
              threads: int, sample_weight: np.ndarray | None) -> _Fold:
    fit_idx, val_idx = cache.folds[i]
    y = cache.y
    assert y is not None
    m = cache.get(i, learner.view)
    model = learner.make(spec.params, problem.task, problem.seed, threads,
                         problem.deterministic)
    y_fit, y_val = y[fit_idx], y[val_idx]
    X_es, y_es = m.valid, y_val
    if problem.task == "classification":  # early stopping on classes it knows
        known = np.isin(y_val, np.unique(y_fit))
        X_es, y_es = m.valid[known], y_val[known]
    w = None if sample_weight is None else sample_weight[fit_idx]
    t0 = time.perf_counter()
    learner.fit(model, m.train, y_fit, X_val=X_es if learner.boosted else None,
                y_val=y_es, categorical=cache.categorical, sample_weight=w)
    fit_s = time.perf_counter() - t0
    out = predict(model, m.valid, problem)
    return _Fold(model, m.view, out, problem.score(y_val, out), fit_s, learner.rounds(model))


@contextmanager
def quiet_fits() -> Iterator[None]:
    """Learners' convergence and user warnings off while fits run in the pool's threads
    (``warnings.catch_warnings`` changes global state, so it is entered once, here, by the
    thread that waits for the fits, never by the fits themselves)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def _pipeline(view: Any, model: Any) -> Any:
    from sklearn.pipeline import Pipeline

    return Pipeline([("features", view), ("model", model)])


_POOLS: dict[tuple[int, int], Any] = {}
_POOLS_LOCK = threading.Lock()


def fit_pool(workers: int) -> Any:
    """A thread pool of ``workers`` threads kept for the process (one per process id: a
    forked child gets its own). With more than one worker, each thread's OpenMP runs on
    one thread, so that the workers share the cores without oversubscribing them."""
    from concurrent.futures import ThreadPoolExecutor

    key = (os.getpid(), workers)
    with _POOLS_LOCK:
        if key not in _POOLS:
            _POOLS[key] = ThreadPoolExecutor(
                workers, thread_name_prefix="loopml-fit",
                initializer=_one_openmp_thread if workers > 1 else None)
        return _POOLS[key]


def _one_openmp_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="openmp")  # OpenMP's thread count is per calling thread


def predict_ms_per_1000(model: Any, X: np.ndarray, problem: Problem) -> float:
    """Milliseconds ``model`` takes to score 1,000 rows (``X``'s rows repeated), measured
    on one batch so that a per-call cost is not multiplied by a small fold."""
    batch = X[np.arange(BATCH_ROWS) % max(len(X), 1)] if len(X) else X
    t0 = time.perf_counter()
    predict(model, batch, problem)
    return (time.perf_counter() - t0) * 1e6 / max(len(batch), 1)


def predict(model: Any, X: Any, problem: Problem) -> np.ndarray:
    """Probabilities over ``problem.classes`` (a class the model never saw gets 0), or values."""
    if problem.task != "classification":
        return np.asarray(model.predict(X), dtype=np.float64)
    return aligned_proba(model, X, problem.classes)


def aligned_proba(model: Any, X: Any, classes: Any) -> np.ndarray:
    """``model.predict_proba(X)`` with its columns placed in ``classes`` order, each row
    summing to one in float64 (a float32 learner's rows are off by ~1e-7)."""
    return align(model.predict_proba(X), np.asarray(model.classes_).tolist(), classes)


def align(proba: Any, own: Any, classes: Any) -> np.ndarray:
    """Probabilities over the classes ``own`` as ``aligned_proba`` gives them: rows summing
    to one in float64, columns in ``classes`` order (a class not in ``own`` gets 0)."""
    proba = np.array(proba, dtype=np.float64)
    total = proba.sum(axis=1, keepdims=True)
    proba = np.divide(proba, total, out=proba, where=total > 0)
    if own is None or classes is None or list(own) == list(classes):
        return proba
    out = np.zeros((proba.shape[0], len(classes)))
    where = {c: j for j, c in enumerate(classes)}
    for j, c in enumerate(own):
        out[:, where[c]] = proba[:, j]
    return out
