"""Model search under a time budget: Optuna per learner, k-fold CV on the training split,
the best candidate chosen on the validation split, then refit on train + validation."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.core.errors import TrainingError
from loopml.core.progress import SILENT, Reporter
from loopml.core.records import Candidate, Leaderboard, Splits, TrainResult
from loopml.evaluate import default_metric, greater_is_better, score
from loopml.train._learners import available_threads, get_learner

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.config import TrainingConfig

SEARCH_SHARE = 0.75  # of the budget; the rest is kept for validation fits and the final refit


def train(
    splits: Splits,
    *,
    features: Any,
    task: str,
    target: str | None,
    config: TrainingConfig,
    positive_label: Any = None,
    reporter: Reporter = SILENT,
) -> TrainResult:
    """Search learners and hyperparameters within ``config.time_budget_s`` and return the best
    model refit on train + validation, as one Pipeline (features + estimator).

    ``features`` is an unfitted transformer (``loopml.features.build_features``); each
    candidate gets its own copy.
    """
    import optuna
    import polars as pl
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.monotonic()
    metric = default_metric(task, config.metric)
    better = greater_is_better(metric)
    columns = _feature_columns(features)
    learners = [get_learner(k) for k in config.learners]
    keys = [k for k, lrn in zip(config.learners, learners, strict=True) if task in lrn.tasks]
    if task == "clustering" and not keys:
        keys = ["kmeans"]
    if not keys:
        raise TrainingError(
            f"None of the learners {list(config.learners)} handles {task}.",
            hint="Set training.learners to e.g. [linear, lightgbm] (or [kmeans] for clustering).",
        )
    threads = available_threads()
    X_search, y_search = _search_rows(splits, task, target, columns, config)
    folds = _folds(X_search, y_search, task, splits.strategy, config)

    def make(key: str, params: dict[str, Any]) -> Any:
        estimator = get_learner(key).make(params, task, config.seed, threads)
        return Pipeline([("features", clone(features)), ("model", estimator)])

    budget = config.time_budget_s * SEARCH_SHARE
    reporter.start("search", total=float(config.time_budget_s))
    candidates: list[Candidate] = []
    best_by_learner: dict[str, Candidate] = {}
    for i, key in enumerate(keys):
        learner = get_learner(key)
        left = budget - (time.monotonic() - started)
        weights = [get_learner(k).weight for k in keys[i:]]
        share = max(left * weights[0] / sum(weights), 1.0)
        found = _search_learner(
            key, learner, make, X_search, y_search, folds,
            metric=metric, better=better, task=task, positive_label=positive_label,
            deadline=time.monotonic() + share, seed=config.seed, reporter=reporter,
            first_trial=len(candidates),
        )
        candidates.extend(found)
        ok = [c for c in found if c.status == "ok"]
        if ok:
            best_by_learner[key] = _best(ok, better, "cv_score")
    if not best_by_learner:
        reasons = "; ".join(sorted({c.message for c in candidates if c.message}))[:500]
        raise TrainingError(f"Every candidate failed: {reasons}")
    reporter.finish("search", note=f"{len(candidates)} candidates")

    # Validation: each learner's best, fit on the whole training split.
    reporter.start("validate", total=len(best_by_learner))
    X_train, y_train = _xy(splits.train, target, columns, task)
    X_valid, y_valid = _xy(splits.valid, target, columns, task)
    validated = {}
    for key, cand in best_by_learner.items():
        t0 = time.monotonic()
        model = make(key, cand.params).fit(X_train, y_train)
        fit_s = time.monotonic() - t0
        valid = score(metric, model, X_valid, y_valid, positive_label=positive_label)
        validated[key] = replace(cand, valid_score=_finite(valid), fit_time_s=round(fit_s, 3))
        reporter.advance("validate", note=f"{key}: {metric} {valid:.4f}")
    reporter.finish("validate")
    candidates = [validated.get(c.learner, c) if c is best_by_learner.get(c.learner) else c
                  for c in candidates]
    winner = _best(list(validated.values()), better, "valid_score")

    # The winner learns from train + validation; the test split stays untouched.
    reporter.start("refit", total=1)
    train_valid = pl.concat([splits.train, splits.valid], how="vertical_relaxed")
    X_all, y_all = _xy(train_valid, target, columns, task)
    final = make(winner.learner, winner.params).fit(X_all, y_all)
    reporter.finish("refit")

    leaderboard = Leaderboard(
        metric=metric,
        greater_is_better=better,
        candidates=tuple(sorted(candidates, key=lambda c: _sort_key(c, better))),
        best=winner,
        seconds=round(time.monotonic() - started, 3),
    )
    classes = tuple(final.classes_.tolist()) if task == "classification" else None
    return TrainResult(
        model=final,
        leaderboard=leaderboard,
        task=task,
        target=target,
        feature_columns=tuple(columns),
        classes=classes,
        positive_label=positive_label,
    )


def _search_learner(
    key: str, learner: Any, make: Any, X: pl.DataFrame, y: np.ndarray | None,
    folds: list[tuple[np.ndarray, np.ndarray]], *, metric: str, better: bool, task: str,
    positive_label: Any, deadline: float, seed: int, reporter: Reporter, first_trial: int,
) -> list[Candidate]:
    """Trials until the deadline; a trial that runs past it stops after its current fold
    (unless it is the learner's first, so that every learner gets one complete result)."""
    import warnings

    import optuna
    from sklearn.exceptions import ConvergenceWarning

    found: list[Candidate] = []
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    study = optuna.create_study(
        direction="maximize" if better else "minimize", sampler=sampler, pruner=pruner
    )
    study.enqueue_trial(learner.defaults(task))

    def objective(trial: optuna.Trial) -> float:
        params = learner.space(trial, task)
        scores: list[float] = []
        t0 = time.monotonic()
        status, message = "ok", ""
        try:
            for step, (fit_idx, val_idx) in enumerate(folds):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    model = make(key, params).fit(X[fit_idx], None if y is None else y[fit_idx])
                s = score(metric, model, X[val_idx], None if y is None else y[val_idx],
                          positive_label=positive_label)
                scores.append(s)
                trial.report(float(np.nanmean(scores)), step)
                if trial.should_prune():
                    status = "pruned"
                    break
                if found and time.monotonic() > deadline and step < len(folds) - 1:
                    status, message = "pruned", "stopped at the time budget"
                    break
        except Exception as exc:  # a bad parameter combination must not end the search
            status, message = "failed", f"{type(exc).__name__}: {exc}"[:300]
        elapsed = time.monotonic() - t0
        cv = float(np.nanmean(scores)) if scores else None
        found.append(
            Candidate(
                learner=key, params=params, cv_score=_finite(cv),
                cv_std=_finite(float(np.nanstd(scores))) if scores else None,
                valid_score=None, fit_time_s=round(elapsed, 3),
                trial=first_trial + len(found), status=status, message=message,
            )
        )
        reporter.advance("search", elapsed, note=f"{key} #{len(found)} {metric}={cv if cv is None else round(cv, 4)}")
        if status != "ok" or cv is None or math.isnan(cv):
            raise optuna.TrialPruned()
        return cv

    study.optimize(
        objective, timeout=max(deadline - time.monotonic(), 0.0), n_trials=learner.max_trials
    )
    return found


def _search_rows(
    splits: Splits, task: str, target: str | None, columns: list[str], config: TrainingConfig
) -> tuple[pl.DataFrame, np.ndarray | None]:
    frame = splits.train
    if frame.height > config.max_search_rows and splits.strategy != "time":
        frame = frame.sample(config.max_search_rows, seed=config.seed)
    elif frame.height > config.max_search_rows:
        frame = frame.tail(config.max_search_rows)  # the newest rows, still in time order
    return _xy(frame, target, columns, task)


def _folds(
    X: pl.DataFrame, y: np.ndarray | None, task: str, strategy: str, config: TrainingConfig
) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    n = X.height
    if strategy == "time":
        splitter: Any = TimeSeriesSplit(n_splits=config.cv_folds)
    elif task == "classification" and y is not None and np.unique(y, return_counts=True)[1].min() >= config.cv_folds:
        splitter = StratifiedKFold(n_splits=config.cv_folds, shuffle=True, random_state=config.seed)
    else:
        splitter = KFold(n_splits=config.cv_folds, shuffle=True, random_state=config.seed)
    return [(a, b) for a, b in splitter.split(np.zeros(n), y if task == "classification" else None)]


def _xy(
    frame: pl.DataFrame, target: str | None, columns: list[str], task: str
) -> tuple[pl.DataFrame, np.ndarray | None]:
    X = frame.select(columns)
    if task == "clustering" or target is None:
        return X, None
    return X, frame[target].to_numpy()


def _feature_columns(features: Any) -> list[str]:
    cols: list[str] = []
    for _, _, names in features.transformers:
        cols.extend(names)
    return cols


def _best(cands: list[Candidate], better: bool, field: str) -> Candidate:
    def key(c: Candidate) -> float:
        v = getattr(c, field)
        if v is None or math.isnan(v):
            return -math.inf
        return v if better else -v

    return max(cands, key=key)


def _sort_key(c: Candidate, better: bool) -> tuple[int, float]:
    v = c.valid_score if c.valid_score is not None else c.cv_score
    if v is None or math.isnan(v):
        return (2, 0.0)
    return (0 if c.valid_score is not None else 1, -v if better else v)


def _finite(v: float | None) -> float | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return round(float(v), 6)
