"""After the search: the greedy ensemble, the choice of the final model (best, or fastest
within a distance of it), calibration and threshold, the final fit within what is left of
the budget, and the leaderboard that says why the winner won."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.core.records import Candidate, Leaderboard, TrainResult
from loopml.train._budget import MIN_RESERVE_S
from loopml.train._dask_fit import DASK_LEARNERS
from loopml.train._ensemble import greedy_ensemble
from loopml.train._final import REFIT_GROWTH, FoldBag, SearchedModel
from loopml.train._learners import get_learner

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.config import TrainingConfig
    from loopml.core.contract import Contract
    from loopml.core.progress import Reporter
    from loopml.train._budget import Clock
    from loopml.train._cv import Trial
    from loopml.train._parallel import ClusterSearch, SharedSearch
    from loopml.train._search import _Runner

# relative fit and predict costs by learner, for ``prefer`` in deterministic mode (measured
# times differ by machine and by run)
STATIC_COST = {"linear": 1, "knn": 2, "hist_gbm": 3, "lightgbm": 3, "xgboost": 4,
               "extra_trees": 5, "random_forest": 6}
STATIC_PREDICT_COST = {"linear": 1, "lightgbm": 2, "xgboost": 2, "hist_gbm": 2,
                       "extra_trees": 4, "random_forest": 4, "knn": 8}


@dataclass
class Choice:
    members: list[tuple[Trial, float]]
    score: float
    oof: np.ndarray
    name: str


def finish(
    runner: _Runner, *, frame: pl.DataFrame, target: str, contract: Contract,
    config: TrainingConfig, clock: Clock, cv_text: str, dropped: list[tuple[str, str]],
    selected_out: list[tuple[str, str]], class_weights: dict[Any, float] | None,
    covered: np.ndarray, y: np.ndarray, reporter: Reporter,
    shared: SharedSearch | None = None, on_cluster: ClusterSearch | None = None,
) -> TrainResult:
    problem = runner.problem
    clock.phase("ensemble")
    pool = [t for t in runner.ok() if t.fold_models and t.oof is not None]
    best_single = Choice([(pool[0], 1.0)], pool[0].score, pool[0].oof, pool[0].name)  # type: ignore[arg-type]
    ensemble = None
    if config.ensemble and len(pool) >= 2:
        weights, score = greedy_ensemble([t.oof[covered] for t in pool], y[covered], problem)  # type: ignore[index]
        if len(weights) > 1 and problem.better(score, best_single.score):
            members = [(pool[j], w) for j, w in weights.items()]
            oof = sum(w * t.oof for t, w in members)  # type: ignore[operator]
            ensemble = Choice(members, score, oof, "ensemble")  # type: ignore[arg-type]
    chosen = ensemble or best_single
    reason = _reason(chosen, best_single, ensemble, problem.metric, len(runner.trials),
                     bool(config.ensemble))
    if not isinstance(config.prefer, str):
        chosen, reason = _prefer(chosen, pool, ensemble, config.prefer.fastest_within,
                                 problem, config.deterministic, reason, by=config.prefer.by)

    clock.phase("calibrate")
    calibrator, threshold = None, None
    if problem.task == "classification":
        calibrator, threshold = _calibrate(chosen.oof[covered], y[covered], problem, config)

    clock.phase("final fit")
    reporter.start("refit", total=len(chosen.members))
    members, final_fit, fitted_there = _final_members(
        chosen, frame, target, contract, runner, clock, class_weights, reporter, shared)
    reporter.finish("refit", note=final_fit)
    columns = [c for c in contract.names if any(c in t.columns for t, _ in chosen.members)]
    if len(members) == 1 and calibrator is None and threshold is None:
        model = members[0][0]
    else:
        model = SearchedModel(members, task=problem.task, classes=problem.classes,
                              columns=columns, calibrator=calibrator, threshold=threshold,
                              positive=problem.positive)
    seconds = clock.stop()

    candidates = _candidates(runner.trials, chosen)
    best = next(c for c in candidates if c.name == chosen.members[0][0].name)
    if ensemble is not None:
        ens = _ensemble_candidate(ensemble, y, covered, runner, len(candidates))
        candidates.append(ens)
        if chosen is ensemble:
            best = ens
    sign = -1.0 if problem.greater_is_better else 1.0
    candidates.sort(key=lambda c: (c.status != "ok", c.cv_score is None,
                                   sign * (c.cv_score or 0.0)))
    dropped_all = list(dropped) + [(c, why) for c, why in selected_out if c not in columns]
    leaderboard = Leaderboard(
        metric=problem.metric, greater_is_better=problem.greater_is_better,
        candidates=tuple(candidates), best=best, seconds=seconds,
        budget_s=float(config.time_budget_s), cv=cv_text,
        final="ensemble" if chosen is ensemble else "single", final_fit=final_fit,
        ensemble=tuple(zip([t.name for t, _ in chosen.members],
                           shown_weights([w for _, w in chosen.members]), strict=True))
        if chosen is ensemble else (),
        reason=reason, dropped_features=tuple(dropped_all),
        calibration=getattr(calibrator, "method", None), threshold=threshold,
        deterministic=config.deterministic,
    )
    return TrainResult(
        model=model, leaderboard=leaderboard, task=problem.task, target=target,
        feature_columns=tuple(columns), classes=problem.classes,
        positive_label=None if problem.positive is None or problem.classes is None
        else problem.classes[problem.positive],
        cluster=None if on_cluster is None else on_cluster.record(
            fitted_there, trials=len(runner.trials)),
    )


def _reason(chosen: Choice, single: Choice, ensemble: Choice | None, metric: str,
            n: int, tried: bool) -> str:
    if chosen is ensemble:
        parts = ", ".join(f"{t.name} {w:.2f}" for t, w in chosen.members)
        return (f"ensemble of {parts}: out-of-fold {metric} {chosen.score:.4f} vs best "
                f"single {single.score:.4f} ({single.name}).")
    why = ("the greedy ensemble did not beat it" if tried else "ensembling is off")
    return (f"{single.name} has the best out-of-fold {metric} ({single.score:.4f}) of {n} "
            f"candidates; {why}.")


def _cost(choice: Choice, deterministic: bool, by: str = "fit") -> float:
    """Seconds to fit ``choice``, or milliseconds for it to predict 1,000 rows (the sum over
    an ensemble's members); relative costs by learner in deterministic mode."""
    if deterministic:
        costs = STATIC_PREDICT_COST if by == "predict" else STATIC_COST
        return float(sum(costs.get(t.spec.learner, 5) for t, _ in choice.members))
    if by == "predict":  # not measured: never preferred
        return float(sum(math.inf if _finite(t.predict_ms_per_1000) is None
                         else t.predict_ms_per_1000 for t, _ in choice.members))
    return float(sum(t.fit_s for t, _ in choice.members))


def _prefer(chosen: Choice, pool: list[Trial], ensemble: Choice | None, within: float,
            problem: Any, deterministic: bool, reason: str, *, by: str = "fit"
            ) -> tuple[Choice, str]:
    options = [Choice([(t, 1.0)], t.score, t.oof, t.name) for t in pool]  # type: ignore[arg-type]
    if ensemble is not None:
        options.append(ensemble)
    near = [c for c in options if abs(c.score - chosen.score) <= within]
    fastest = min(near, key=lambda c: _cost(c, deterministic, by))
    if fastest.name == chosen.name:  # the best itself (the best single: another Choice)
        return chosen, reason

    def cost(c: Choice) -> str:
        spent = _cost(c, False, by)
        return f"predicts 1,000 rows in {spent:.2f} ms" if by == "predict" else (
            f"fit {spent:.2f} s")

    fastest_at = "fastest to predict" if by == "predict" else "fastest"
    return fastest, (
        f"{fastest.name} ({cost(fastest)}, out-of-fold {problem.metric} {fastest.score:.4f}) "
        f"is the {fastest_at} within {within} of the best, {chosen.name} ({chosen.score:.4f}, "
        f"{cost(chosen)}).")


def _calibrate(oof: np.ndarray, y: np.ndarray, problem: Any,
               config: TrainingConfig) -> tuple[Any, float | None]:
    from loopml.train._calibrate import choose_calibration, choose_threshold

    calibrator = None
    if config.calibrate:
        calibrator = choose_calibration(oof, y, problem.classes, seed=config.seed)
        if calibrator is not None:
            oof = np.asarray(calibrator.transform(oof))
    threshold = None
    if problem.positive is not None:
        threshold = choose_threshold(oof, y, problem.classes, metric=problem.metric,
                                     positive_label=problem.classes[problem.positive])
    return calibrator, threshold


def _final_members(
    chosen: Choice, frame: pl.DataFrame, target: str, contract: Contract, runner: _Runner,
    clock: Clock, class_weights: dict[Any, float] | None, reporter: Reporter,
    shared: SharedSearch | None = None,
) -> tuple[list[tuple[Any, float]], str, dict[str, str]]:
    """Each member refit on train + validation while its estimated refit fits in what is
    left of the budget (always, in deterministic mode), else its fold models as a bag.

    Members refit side by side, one per core (one member gets every core); with ``shared``,
    LightGBM and XGBoost members are fitted by the cluster's workers together, one after
    another, here. Also returns, by member name, how each was fitted on the cluster."""
    from loopml.train._cv import build_view, fit_pool
    from loopml.train._search import refit_estimate

    problem = runner.problem
    y = frame[target].to_numpy()
    weights = None if not class_weights else np.asarray(
        [class_weights.get(v, 1.0) for v in y.tolist()], dtype=np.float64)
    workers = max(1, min(problem.threads, len(chosen.members)))
    threads = max(1, problem.threads // workers)
    ends = [0.0] * workers  # when each worker would be free, by the estimates
    estimates = [refit_estimate(trial, frame.height) for trial, _ in chosen.members]
    refit: dict[int, bool] = {}
    for j in sorted(range(len(estimates)), key=lambda j: -estimates[j]):  # longest first
        slot = int(np.argmin(ends))
        refit[j] = problem.deterministic or (
            ends[slot] + estimates[j] <= clock.left() - MIN_RESERVE_S)
        if refit[j]:
            ends[slot] += estimates[j]
    views: dict[tuple[tuple[str, ...], str], tuple[Any, np.ndarray]] = {}
    for j, (trial, _) in enumerate(chosen.members):
        key = (trial.columns, get_learner(trial.spec.learner).view)
        if refit[j] and key not in views:
            view = build_view(contract, trial.columns, problem.task, key[1])
            X = np.asarray(view.fit_transform(frame.select(trial.columns), y), dtype=np.float64)
            views[key] = (view, X)

    def fit(j: int) -> tuple[Any, str]:
        from sklearn.pipeline import Pipeline

        trial = chosen.members[j][0]
        learner = get_learner(trial.spec.learner)
        if j in remote:
            return remote[j]
        if not refit[j]:
            return (FoldBag(trial.fold_models, task=problem.task, classes=problem.classes),
                    f"{trial.name}: fold models")
        view, X = views[(trial.columns, learner.view)]
        params = dict(trial.spec.params)
        if learner.rounds_param and trial.rounds:
            params[learner.rounds_param] = max(1, int(np.mean(trial.rounds) * REFIT_GROWTH))
        model = learner.make(params, problem.task, problem.seed, threads,
                             problem.deterministic)
        t0 = time.perf_counter()
        learner.fit(model, X, y, categorical=_categorical(contract, trial.columns),
                    sample_weight=weights)
        return (Pipeline([("features", view), ("model", model)]),
                f"{trial.name} {time.perf_counter() - t0:.1f} s")

    remote: dict[int, tuple[Any, str]] = {}
    fitted_there: dict[str, str] = {}
    out: list[tuple[Any, float]] = []
    with warnings.catch_warnings():  # here, not in the fits' threads: the filters are global
        warnings.simplefilter("ignore")
        if shared is not None:
            for j, (trial, _) in enumerate(chosen.members):
                if not (refit[j] and trial.spec.learner in DASK_LEARNERS):
                    continue
                how = DASK_LEARNERS[trial.spec.learner]
                try:
                    remote[j] = _fit_on_cluster(trial, views, contract, problem, weights, y,
                                                shared)
                    fitted_there[trial.name] = how
                except Exception as exc:  # the member is refit here instead, and it is said
                    from loopml.core.errors import first_line

                    fitted_there[trial.name] = f"here ({how} failed: {first_line(exc)})"
        fits = list(fit_pool(workers).map(fit, range(len(chosen.members))))
    for (model, note), (_, w) in zip(fits, chosen.members, strict=True):
        reporter.advance("refit", note=note)
        out.append((model, w))
    return out, "refit" if all(refit.values()) else "bagged", fitted_there


def _fit_on_cluster(trial: Trial, views: dict[Any, tuple[Any, np.ndarray]], contract: Contract,
                    problem: Any, weights: np.ndarray | None, y: np.ndarray,
                    shared: SharedSearch) -> tuple[Any, str]:
    """One member refit on all rows by the cluster's workers (its rounds as a refit here)."""
    from sklearn.pipeline import Pipeline

    from loopml.train._dask_fit import fit_on_cluster

    learner = get_learner(trial.spec.learner)
    view, X = views[(trial.columns, learner.view)]
    params = dict(trial.spec.params)
    if learner.rounds_param and trial.rounds:
        params[learner.rounds_param] = max(1, int(np.mean(trial.rounds) * REFIT_GROWTH))
    model = learner.make(params, problem.task, problem.seed, problem.threads,
                         problem.deterministic)
    t0 = time.perf_counter()
    fitted = fit_on_cluster(shared.client, trial.spec.learner, model, X, y,
                            categorical=_categorical(contract, trial.columns),
                            sample_weight=weights)
    return (Pipeline([("features", view), ("model", fitted)]),
            f"{trial.name} {time.perf_counter() - t0:.1f} s on "
            f"{DASK_LEARNERS[trial.spec.learner]}")


def _categorical(contract: Contract, columns: tuple[str, ...]) -> int:
    from loopml.features import categorical_count

    return categorical_count(contract, columns)


def _candidates(trials: list[Trial], chosen: Choice) -> list[Candidate]:
    weights = {id(t): w for t, w in chosen.members} if len(chosen.members) > 1 else {}
    out = []
    for i, t in enumerate(trials):
        score = t.score if t.status == "ok" else (
            float(np.mean(t.fold_scores)) if t.fold_scores else None)
        out.append(Candidate(
            learner=t.spec.learner, params=t.params(), cv_score=_finite(score),
            cv_std=_finite(t.std), valid_score=None, fit_time_s=round(t.fit_s, 3), trial=i,
            status=t.status, message=t.message, name=t.name, origin=t.origin,
            predict_ms_per_1000=_finite(t.predict_ms_per_1000),
            ensemble_weight=round(weights.get(id(t), 0.0), 4),
        ))
    return out


def shown_weights(weights: list[float], places: int = 4) -> list[float]:
    """Weights rounded to ``places`` decimals that still add up to 1: the rounding residue goes
    to the largest weight (three thirds are shown as 0.3334, 0.3333, 0.3333).

    >>> shown_weights([1 / 3, 1 / 3, 1 / 3])
    [0.3334, 0.3333, 0.3333]
    """
    shown = [round(w, places) for w in weights]
    if shown:
        top = max(range(len(shown)), key=lambda i: weights[i])
        shown[top] = round(shown[top] + round(1.0 - sum(shown), places), places)
    return shown


def _ensemble_candidate(ens: Choice, y: np.ndarray, covered: np.ndarray, runner: _Runner,
                        n: int) -> Candidate:
    problem = runner.problem
    scores = [problem.score(y[val], ens.oof[val]) for _, val in runner.folds]
    return Candidate(
        learner="ensemble", params={"members": dict(zip(
            [t.name for t, _ in ens.members], shown_weights([w for _, w in ens.members]),
            strict=True))},
        cv_score=_finite(ens.score), cv_std=_finite(float(np.std(scores)) if scores else None),
        valid_score=None, fit_time_s=round(sum(t.fit_s for t, _ in ens.members), 3),
        trial=n, name="ensemble", origin="ensemble",
        predict_ms_per_1000=_finite(sum(t.predict_ms_per_1000 or 0.0 for t, _ in ens.members)),
    )


def _finite(v: float | None) -> float | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return round(float(v), 6)
