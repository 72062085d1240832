"""The model search under one time budget: a portfolio of known-good configurations across
learners, model-based search (Optuna TPE) on the best learners while time remains, greedy
ensemble selection over out-of-fold predictions, then the final fit.

Cross-validation runs on train + validation together (the test split is never touched);
feature views are fitted once per fold and shared by every candidate.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.core.cpu import available_threads
from loopml.core.errors import TrainingError
from loopml.core.progress import SILENT, Reporter
from loopml.core.records import Splits, TrainResult
from loopml.evaluate import default_metric, greater_is_better
from loopml.train._budget import Clock
from loopml.train._cv import FoldCache, Problem, Trial, cross_fit, make_folds, problem_for
from loopml.train._learners import DETERMINISTIC_THREADS, get_learner
from loopml.train._portfolio import Shape, Spec, first, portfolio

if TYPE_CHECKING:
    from collections.abc import Sequence

    import polars as pl

    from loopml.core.config import TrainingConfig
    from loopml.core.contract import Contract
    from loopml.train._parallel import ClusterSearch, SharedSearch

SEARCH_TRIALS = 6  # deterministic mode without max_trials: Optuna trials after the portfolio
TUNED_FAMILIES = 2  # the model-based search tunes this many of the best learners
KEEP_FOLD_MODELS = 12  # candidates whose fold models are kept (for bagging and ensembling)
RESERVE_MEMBERS = 4  # the refit of this many of the best candidates is held in reserve
PRUNE_FACTOR = 2.0  # a first fold with more than this times the best's loss ends a candidate


def train(
    splits: Splits,
    *,
    contract: Contract,
    columns: Sequence[str],
    task: str,
    target: str | None,
    config: TrainingConfig,
    positive_label: Any = None,
    group_column: str | None = None,
    reporter: Reporter = SILENT,
    shared: SharedSearch | None = None,
    warm: Sequence[Spec] = (),
) -> TrainResult:
    """Search learners and configurations within ``config.time_budget_s`` (all of it:
    search, ensembling and the final fit) and return the chosen model as one
    scikit-learn estimator that takes a frame of ``result.feature_columns``.

    ``columns`` are the candidate feature columns; ``group_column`` keeps each group's rows
    in one fold. Clustering goes to ``cluster`` (same arguments, no target).

    With ``shared`` (a ``SharedSearch``), the portfolio and the model-based search run
    their trials on the Dask cluster's workers (the latter through Optuna studies in a
    storage they share), and a LightGBM or XGBoost final model is fitted by the workers
    together (``lightgbm.dask``, ``xgboost.dask``).

    ``warm`` (``warm_specs`` of the champion's search) are tried before the portfolio, as
    candidates of origin ``champion``: a retrain starts from what won last time.
    """
    import polars as pl

    if task == "clustering":
        from loopml.train._cluster import cluster

        return cluster(splits, contract=contract, columns=columns, task=task, config=config,
                       group_column=group_column, reporter=reporter)
    clock = Clock(float(config.time_budget_s), deterministic=config.deterministic)
    clock.phase("prepare")
    metric = default_metric(task, config.metric)
    keys = [k for k in config.learners if task in get_learner(k).tasks]
    if not keys or target is None:
        raise TrainingError(
            f"None of the learners {list(config.learners)} handles {task}."
            if target is not None else f"A {task} task needs a target column.",
            hint="Set training.learners to e.g. [linear, lightgbm] (or [kmeans] for clustering).",
        )
    threads = DETERMINISTIC_THREADS if config.deterministic else available_threads()
    frame = pl.concat([splits.train, splits.valid], how="vertical_relaxed")
    kept, dropped = _drop_useless(frame, columns, contract, target)
    search = _search_rows(frame, splits.strategy, config)
    y = search[target].to_numpy()
    # classes from every row, so that a class the search sample lacks still has a column
    problem = problem_for(task, metric, greater_is_better(metric), frame[target].to_numpy(),
                          positive_label, seed=config.seed, threads=threads,
                          deterministic=config.deterministic)
    weights = _class_weights(y) if task == "classification" else None
    folds, cv_text = make_folds(
        search, y, task=task, strategy=splits.strategy, time_column=splits.time_column,
        group_column=group_column, k=config.cv_folds, seed=config.seed)
    cache = FoldCache(search, y, folds, contract=contract, columns=kept, task=task)
    runner = _Runner(problem, clock, reporter, weights=_row_weights(weights, y),
                     limit=config.max_trials)
    runner.full_rows, runner.folds = frame.height, folds
    reporter.start("search", total=float(config.time_budget_s))

    on_cluster = None
    if shared is not None:
        from loopml.train._parallel import ClusterSearch

        on_cluster = ClusterSearch(shared, runner, cache, task)  # the rows go out once
    clock.phase("portfolio")
    shape = Shape(rows=search.height, features=len(kept), classes=len(problem.classes or ()))
    warm = [w for w in warm if w.learner in keys]
    specs = first(warm, portfolio(keys, task, shape))
    if on_cluster is not None:
        on_cluster.portfolio(runner, cache, specs, warm=warm)
    for spec in specs if on_cluster is None else ():
        if runner.done():
            break
        if runner.affordable(spec):
            runner.run(spec, cache, origin="champion" if spec in warm else "portfolio")
    if not runner.ok():
        reasons = "; ".join(sorted({t.message for t in runner.trials if t.message}))[:500]
        raise TrainingError(f"Every candidate failed: {reasons}")

    clock.phase("select")
    cache, selected_out = _select_features(runner, cache, contract, search, y, folds, task)
    clock.phase("search")
    _tune(runner, cache, keys, task, config, on_cluster)
    reporter.finish("search", note=f"{len(runner.trials)} candidates")

    from loopml.train._choose import finish

    return finish(
        runner, frame=frame, target=target, contract=contract, config=config, clock=clock,
        cv_text=cv_text, dropped=dropped, selected_out=selected_out, class_weights=weights,
        covered=cache.covered, y=y, reporter=reporter, shared=shared,
        on_cluster=on_cluster,
    )


class _Runner:
    """Runs candidates and keeps their trials; knows the budget and the reserve."""

    def __init__(self, problem: Problem, clock: Clock, reporter: Reporter, *,
                 weights: np.ndarray | None, limit: int | None):
        self.problem, self.clock, self.reporter = problem, clock, reporter
        self.weights, self.limit = weights, limit
        self.trials: list[Trial] = []
        self.full_rows = 0  # rows of the final fit, for the refit estimate
        self.folds: list[tuple[np.ndarray, np.ndarray]] = []

    def ok(self) -> list[Trial]:
        """Completed trials, best first."""
        done = [t for t in self.trials if t.status == "ok" and t.score is not None
                and not math.isnan(t.score)]
        sign = -1.0 if self.problem.greater_is_better else 1.0
        return sorted(done, key=lambda t: sign * t.score)  # type: ignore[operator]

    def reserve(self) -> float:
        """Seconds kept for ensembling and refitting the likely ensemble members."""
        top = self.ok()[:RESERVE_MEMBERS]
        # a fold that starts just before the line ends after it: hold one fold's time more
        slack = max((max(t.fold_fit_s) for t in self.trials if t.fold_fit_s), default=0.0)
        return self.clock.reserve_for(
            sum(refit_estimate(t, self.full_rows) for t in top)) + slack

    def done(self) -> bool:
        if self.limit is not None and len(self.trials) >= self.limit:
            return True
        return bool(self.ok()) and self.clock.out(self.reserve())

    def affordable(self, spec: Spec) -> bool:
        """Whether ``spec`` should finish before the reserve, judged by the fit time of the
        same learner's earlier candidates (always, in deterministic mode or with none)."""
        if self.clock.deterministic or not self.ok():
            return True
        seen = [t.wall_s for t in self.trials
                if t.spec.learner == spec.learner and t.status == "ok"]
        if not seen:
            return True
        return min(seen) <= self.clock.left() - self.reserve()

    def run(self, spec: Spec, cache: FoldCache, *, origin: str, name: str = "") -> Trial:
        best = self.ok()[0] if self.ok() else None

        def prune(i: int, score: float) -> bool:
            if i != 0 or best is None or not best.fold_scores:
                return False
            return _loss(score, self.problem) > (
                PRUNE_FACTOR * _loss(best.fold_scores[0], self.problem) + 0.01)

        def stop() -> bool:
            return bool(self.ok()) and self.clock.out(self.reserve())

        started = self.clock.elapsed()
        trial = cross_fit(spec, cache, self.problem, sample_weight=self.weights, stop=stop,
                          prune=prune)
        trial.origin, trial.name = origin, name or spec.name
        if any(t.name == trial.name for t in self.trials):
            trial.name = f"{trial.name}#{len(self.trials)}"
        self.trials.append(trial)
        for old in self.ok()[KEEP_FOLD_MODELS:]:
            old.fold_models = []  # memory: only the leaders' fold models are kept
        score = "-" if trial.score is None else f"{trial.score:.4f}"
        self.reporter.advance("search", self.clock.elapsed() - started,
                              note=f"{trial.name} {self.problem.metric}={score}")
        return trial


def refit_estimate(trial: Trial, full_rows: int) -> float:
    """Seconds a refit of ``trial`` on ``full_rows`` rows should take: its mean fold fit
    time scaled by rows."""
    if not trial.fold_fit_s:
        return 0.0
    per_fold = trial.fit_s / len(trial.fold_fit_s)
    return per_fold * max(1.0, full_rows / max(1, trial.fold_rows))


def _loss(score: float, problem: Problem) -> float:
    return (1.0 - score) if problem.greater_is_better else score


def _tune(runner: _Runner, cache: FoldCache, keys: list[str], task: str,
          config: TrainingConfig, on_cluster: ClusterSearch | None = None) -> None:
    """Optuna TPE on the best learners (by their best portfolio candidate), in turn, while
    the budget lasts (deterministic mode: a fixed number of trials); on the workers of a
    cluster when ``on_cluster`` is given."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    families: list[str] = []
    for t in runner.ok():
        if t.spec.learner not in families and hasattr(get_learner(t.spec.learner), "space"):
            families.append(t.spec.learner)
    families = families[:TUNED_FAMILIES]
    if not families:
        return
    budget = None
    if config.deterministic:
        budget = (config.max_trials - len(runner.trials)) if config.max_trials else SEARCH_TRIALS
    if on_cluster is not None:
        if budget is None and runner.limit is not None:
            budget = runner.limit - len(runner.trials)
        if (budget is None or budget > 0) and not runner.done():
            on_cluster.tune(runner, cache, families, budget, seed=config.seed)
        return
    direction = "maximize" if runner.problem.greater_is_better else "minimize"
    studies = {
        fam: optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(
            seed=config.seed + i, n_startup_trials=3))
        for i, fam in enumerate(families)
    }
    n = 0
    while (budget is None or n < budget) and not runner.done():
        fam = families[n % len(families)]
        study = studies[fam]
        ask = study.ask()
        params = get_learner(fam).space(ask, task)
        n += 1
        trial = runner.run(Spec(fam, f"optuna-{n}", params), cache, origin="search")
        if trial.status == "ok" and trial.score is not None and not math.isnan(trial.score):
            study.tell(ask, trial.score)
        else:
            study.tell(ask, state=optuna.trial.TrialState.PRUNED)


def _select_features(
    runner: _Runner, cache: FoldCache, contract: Contract, search: pl.DataFrame,
    y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], task: str,
) -> tuple[FoldCache, list[tuple[str, str]]]:
    """Importance-based selection, kept only when the best candidate's out-of-fold score on
    fewer columns is not worse."""
    from loopml.train._final import raw_importances
    from loopml.train._select import select_by_importance

    best = next((t for t in runner.ok() if t.fold_models
                 and raw_importances(t.fold_models[0], cache.columns) is not None), None)
    if best is None or len(cache.columns) < 2 or best.score is None:
        return cache, []
    imp = np.mean([raw_importances(m, cache.columns) for m in best.fold_models], axis=0)
    caches: dict[tuple[str, ...], FoldCache] = {}
    worst = -math.inf if runner.problem.greater_is_better else math.inf

    def cv_score(cols: list[str]) -> float:
        if runner.done() or not cols:
            return worst
        sub = FoldCache(search, y, folds, contract=contract, columns=cols, task=task)
        trial = runner.run(best.spec, sub, origin="portfolio",
                           name=f"{best.spec.name}/{len(cols)}-columns")
        caches[tuple(cols)] = sub
        return trial.score if trial.score is not None else worst

    kept, out = select_by_importance(
        list(cache.columns), imp.tolist(), cv_score, baseline=best.score,
        greater_is_better=runner.problem.greater_is_better)
    if tuple(kept) in caches and len(kept) < len(cache.columns):
        return caches[tuple(kept)], list(out)
    return cache, []


def _drop_useless(frame: pl.DataFrame, columns: Sequence[str], contract: Contract,
                  target: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Constant, duplicated and id-like columns out, with reasons; when that would leave no
    column at all, every column stays (the rule is a heuristic, and a run must have features)."""
    from loopml.train._select import drop_useless

    kept, dropped = drop_useless(frame, columns, contract, target=target)
    if not kept:
        return list(columns), []
    return list(kept), list(dropped)


def _class_weights(y: np.ndarray) -> dict[Any, float] | None:
    from loopml.train._calibrate import class_weights

    return class_weights(y)


def _row_weights(weights: dict[Any, float] | None, y: np.ndarray) -> np.ndarray | None:
    if not weights:
        return None
    return np.asarray([weights.get(v, 1.0) for v in y.tolist()], dtype=np.float64)


def _search_rows(frame: pl.DataFrame, strategy: str, config: TrainingConfig) -> pl.DataFrame:
    """At most ``max_search_rows`` rows: a sample, or the newest rows of a time split."""
    if frame.height <= config.max_search_rows:
        return frame
    if strategy == "time":
        return frame.tail(config.max_search_rows)  # still in time order
    return frame.sample(config.max_search_rows, seed=config.seed)
