"""Clustering under a time budget: k-means (mini-batch on large data), Gaussian mixtures and
HDBSCAN, the number of clusters or the density chosen by silhouette, Davies–Bouldin and BIC.

Every candidate is fitted on the same rows (train + validation; the test split is left for
evaluation) and scored on one shared sample, so their silhouettes compare. Within a family
the choice is k-means' best silhouette (Davies–Bouldin breaking near-ties), the mixture with
the lowest BIC and HDBSCAN's best silhouette; across families the best silhouette wins.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from loopml.core.cpu import available_threads
from loopml.core.errors import TrainingError
from loopml.core.progress import SILENT, Reporter
from loopml.core.records import Candidate, Leaderboard, Splits, TrainResult
from loopml.train._select import drop_useless

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loopml.core.config import TrainingConfig
    from loopml.core.contract import Contract

SEARCH_SHARE = 0.9  # of the budget for candidates; the rest assembles the model
SAMPLE_ROWS = 3000  # silhouette and Davies–Bouldin are computed on this many rows
MINIBATCH_ROWS = 20_000  # from this many rows on, mini-batch k-means
MIXTURE_ROWS = 10_000  # Gaussian mixtures are fitted on at most this many rows
HDBSCAN_ROWS = 5000  # HDBSCAN is fitted on at most this many rows (new rows go by neighbours)
MAX_CLUSTERS = 10
GROWTH = 1.3  # a family's next candidate (more clusters) is guessed to cost this much more
NEAR_TIE = 0.01  # silhouettes this close are a tie, which Davies–Bouldin breaks
MIN_ROWS = 10
FAMILIES = ("kmeans", "gaussian_mixture", "hdbscan")


@dataclass(frozen=True, slots=True)
class _Spec:
    learner: str
    params: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.learner}/" + ",".join(f"{k}={v}" for k, v in self.params.items()
                                             if k != "covariance_type")


class NearestClusterHDBSCAN(ClusterMixin, BaseEstimator):
    """HDBSCAN, which has no ``predict`` of its own, with one: a new row gets the cluster of
    its nearest clustered training rows (distance-weighted vote of ``neighbors``). Rows that
    HDBSCAN called noise during fitting (label -1, counted in ``noise_share_``) are not used
    for the vote, so every new row gets a cluster id."""

    def __init__(self, min_cluster_size: int = 10, neighbors: int = 5, n_jobs: int = 1):
        self.min_cluster_size = min_cluster_size
        self.neighbors = neighbors
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any = None) -> NearestClusterHDBSCAN:
        from sklearn.cluster import HDBSCAN
        from sklearn.neighbors import KNeighborsClassifier

        X = np.asarray(X, dtype=float)
        labels = HDBSCAN(min_cluster_size=self.min_cluster_size, n_jobs=self.n_jobs,
                         copy=True).fit(X).labels_
        clustered = labels >= 0
        self.labels_ = labels
        self.noise_share_ = float(1.0 - clustered.mean())
        self.n_clusters_ = int(len(np.unique(labels[clustered])))
        if self.n_clusters_ == 0:
            raise ValueError("every row is noise: HDBSCAN found no cluster")
        self.assign_ = KNeighborsClassifier(
            n_neighbors=int(min(self.neighbors, clustered.sum())), weights="distance",
            n_jobs=self.n_jobs,
        ).fit(X[clustered], labels[clustered])
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.assign_.predict(np.asarray(X, dtype=float))


def cluster(
    splits: Splits,
    *,
    contract: Contract,
    columns: Sequence[str],
    task: str = "clustering",
    target: str | None = None,
    config: TrainingConfig,
    positive_label: Any = None,
    group_column: str | None = None,
    reporter: Reporter = SILENT,
) -> TrainResult:
    """Cluster the train + validation rows within ``config.time_budget_s``: every candidate
    in the leaderboard (metric ``silhouette`` on a shared sample), the winner as one
    scikit-learn pipeline (features, then the clusterer) whose ``predict`` gives cluster ids
    for new rows. Takes the keyword arguments of ``train``; the target-related ones are
    ignored (clustering has no target).
    """
    import polars as pl
    from sklearn.pipeline import Pipeline

    from loopml.features import build_features

    started = time.monotonic()
    frame = pl.concat([splits.train, splits.valid], how="vertical_relaxed")
    if frame.height > config.max_search_rows:
        frame = frame.sample(config.max_search_rows, seed=config.seed)
    kept, dropped = drop_useless(frame, columns, contract, target=target)
    if not kept:
        reasons = "; ".join(f"{c}: {why}" for c, why in dropped)[:500]
        raise TrainingError(f"No column is left to cluster on ({reasons}).",
                            hint="Add columns that vary from row to row to the source.")
    if frame.height < MIN_ROWS:
        raise TrainingError(f"Clustering needs at least {MIN_ROWS} rows; found {frame.height}.")
    features = build_features(contract, columns=kept, task="clustering")
    X = np.asarray(features.fit_transform(frame.select(kept)), dtype=float)
    rng = np.random.default_rng(config.seed)
    sample = np.sort(rng.choice(len(X), size=min(len(X), SAMPLE_ROWS), replace=False))
    wanted = [f for f in FAMILIES if f in config.learners] or list(FAMILIES)
    specs = [s for s in _grid(len(X), X.shape[1]) if s.learner.removeprefix("minibatch_") in wanted]
    limit = (config.max_trials or len(specs)) if config.deterministic else len(specs)
    deadline = started + config.time_budget_s * SEARCH_SHARE

    reporter.start("search", total=float(config.time_budget_s))
    candidates: list[Candidate] = []
    fitted: dict[int, tuple[Any, float | None, float | None]] = {}  # trial -> model, DB, BIC
    cost: dict[str, float] = {}  # seconds the family's last candidate took, scoring included
    for spec in specs[:limit]:
        if not config.deterministic and fitted:
            guess = cost.get(spec.learner, max(cost.values(), default=0.0)) * GROWTH
            if time.monotonic() + guess > deadline:
                continue  # would overrun the budget; a cheaper family may still fit
        t0 = time.monotonic()
        trial = len(candidates)
        cand, model, db, bic = _try(spec, X, sample, trial=trial, seed=config.seed)
        cost[spec.learner] = time.monotonic() - t0
        candidates.append(cand)
        if model is not None:
            fitted[trial] = (model, db, bic)
        reporter.advance("search", cand.fit_time_s, note=f"{cand.name} silhouette "
                         f"{'-' if cand.cv_score is None else round(cand.cv_score, 4)}")
    if not fitted:
        reasons = "; ".join(sorted({c.message for c in candidates if c.message}))[:500]
        raise TrainingError(f"Every clustering candidate failed: {reasons}")
    reporter.finish("search", note=f"{len(candidates)} candidates")

    winner, reason = _choose(candidates, fitted)
    model = Pipeline([("features", features), ("model", fitted[winner.trial][0])])
    leaderboard = Leaderboard(
        metric="silhouette", greater_is_better=True,
        candidates=tuple(sorted(candidates, key=_rank)), best=winner,
        seconds=round(time.monotonic() - started, 3), budget_s=float(config.time_budget_s),
        cv=f"silhouette on {len(sample):,} of the {len(X):,} train + validation rows",
        final="single", final_fit="refit", reason=reason, dropped_features=tuple(dropped),
        deterministic=config.deterministic,
    )
    return TrainResult(model=model, leaderboard=leaderboard, task="clustering", target=None,
                       feature_columns=tuple(kept))  # fmt: skip


def _grid(rows: int, dims: int) -> list[_Spec]:
    """The candidates in the order they are tried: a few of each family first, so that a
    short budget still sees every family, then larger numbers of clusters."""
    top = max(2, min(MAX_CLUSTERS, rows // 10))
    kmeans = "minibatch_kmeans" if rows >= MINIBATCH_ROWS else "kmeans"
    covariance = "full" if dims <= 15 else "diag"
    means = [_Spec(kmeans, {"n_clusters": k}) for k in range(2, top + 1)]
    mixtures = [_Spec("gaussian_mixture", {"n_components": k, "covariance_type": covariance})
                for k in range(2, min(top, 8) + 1)]
    fit_rows = min(rows, HDBSCAN_ROWS)
    sizes = sorted({max(5, int(fit_rows * share)) for share in (0.02, 0.01, 0.05)},
                   key=lambda s: abs(s - max(5, int(fit_rows * 0.02))))
    density = [_Spec("hdbscan", {"min_cluster_size": s}) for s in sizes]
    order: list[_Spec] = []
    for i in range(0, max(len(means), len(mixtures), len(density) * 3), 3):
        order += means[i:i + 3] + mixtures[i:i + 3] + density[i // 3:i // 3 + 1]
    return order


def _make(spec: _Spec, seed: int) -> Any:
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.mixture import GaussianMixture

    p = spec.params
    if spec.learner == "kmeans":
        return KMeans(n_clusters=p["n_clusters"], n_init=3, random_state=seed)
    if spec.learner == "minibatch_kmeans":
        return MiniBatchKMeans(n_clusters=p["n_clusters"], n_init=3, random_state=seed,
                               batch_size=4096)  # fmt: skip
    if spec.learner == "gaussian_mixture":
        return GaussianMixture(n_components=p["n_components"], covariance_type=p["covariance_type"],
                               reg_covar=1e-3, random_state=seed)  # fmt: skip
    return NearestClusterHDBSCAN(min_cluster_size=p["min_cluster_size"],
                                 n_jobs=available_threads())  # fmt: skip


def _try(spec: _Spec, X: np.ndarray, sample: np.ndarray, *, trial: int,
         seed: int) -> tuple[Candidate, Any, float | None, float | None]:  # fmt: skip
    """Fit one candidate and score it on the shared sample: the candidate record, the fitted
    model (None when it failed), its Davies–Bouldin index and (mixtures) its BIC."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    rows = X
    cap = {"gaussian_mixture": MIXTURE_ROWS, "hdbscan": HDBSCAN_ROWS}.get(spec.learner)
    if cap is not None and len(X) > cap:
        rows = X[np.random.default_rng(seed).choice(len(X), size=cap, replace=False)]
    base = {"learner": spec.learner, "params": dict(spec.params), "name": spec.name,
            "valid_score": None, "cv_std": None, "trial": trial, "origin": "portfolio"}
    t0 = time.monotonic()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = _make(spec, seed).fit(rows)
        fit_s = time.monotonic() - t0
        t1 = time.monotonic()
        labels = np.asarray(model.predict(X[sample]))
        predict_ms = (time.monotonic() - t1) * 1000 * 1000 / len(sample)
    except (ValueError, np.linalg.LinAlgError) as exc:
        message = f"{type(exc).__name__}: {exc}"[:300]
        return (Candidate(**base, cv_score=None, fit_time_s=round(time.monotonic() - t0, 3),
                          status="failed", message=message), None, None, None)  # fmt: skip
    found = len(np.unique(labels))
    notes = [f"{found} clusters in the sample"]
    if spec.learner == "hdbscan":
        notes.append(f"{model.noise_share_:.0%} of fitted rows noise, given their nearest "
                     "cluster by neighbours")  # fmt: skip
    if found < 2 or found >= len(sample):
        return (Candidate(**base, cv_score=None, fit_time_s=round(fit_s, 3), status="failed",
                          message="; ".join(notes) + ": silhouette needs 2 or more"),
                None, None, None)  # fmt: skip
    sil = float(silhouette_score(X[sample], labels))
    db = float(davies_bouldin_score(X[sample], labels))
    bic = float(model.bic(rows)) if spec.learner == "gaussian_mixture" else None
    notes.append(f"Davies-Bouldin {db:.3f}")
    if bic is not None:
        notes.append(f"BIC {bic:,.0f}")
    cand = Candidate(**base, cv_score=round(sil, 6), fit_time_s=round(fit_s, 3), status="ok",
                     message="; ".join(notes), predict_ms_per_1000=round(predict_ms, 3))
    return cand, model, db, bic


def _choose(
    candidates: list[Candidate], fitted: dict[int, tuple[Any, float | None, float | None]]
) -> tuple[Candidate, str]:
    """The winner and why: each family's choice (silhouette, BIC for mixtures), then the
    best silhouette across families, Davies–Bouldin (lower is better) breaking near-ties."""
    ok = [c for c in candidates if c.trial in fitted and c.cv_score is not None]
    finalists: list[tuple[Candidate, str]] = []
    for family in ("kmeans", "minibatch_kmeans", "gaussian_mixture", "hdbscan"):
        mine = [c for c in ok if c.learner == family]
        if not mine:
            continue
        if family == "gaussian_mixture":
            pick = min(mine, key=lambda c: fitted[c.trial][2])  # type: ignore[arg-type]
            how = f"lowest BIC of {len(mine)} mixtures"
        else:
            pick = _by_silhouette(mine, fitted)
            how = f"best silhouette of {len(mine)}"
        finalists.append((pick, how))
    winner = _by_silhouette([c for c, _ in finalists], fitted)
    db = fitted[winner.trial][1]
    won = next(how for c, how in finalists if c is winner)
    others = [f"{c.name} ({how}: silhouette {c.cv_score:.3f})" for c, how in finalists
              if c is not winner]  # fmt: skip
    top = max(c.cv_score for c, _ in finalists)  # type: ignore[type-var]
    if winner.cv_score == top:
        reason = f"{winner.name} has the best silhouette, {winner.cv_score:.3f}"
    else:
        reason = (f"{winner.name} is within {NEAR_TIE} of the best silhouette ({top:.3f}) at "
                  f"{winner.cv_score:.3f}, and simpler or better separated")
    reason += f" (Davies-Bouldin {db:.3f}; {won} in its family)"
    if others:
        reason += "; ahead of " + ", ".join(others)
    return winner, reason + "."


def _by_silhouette(cands: list[Candidate], fitted: dict[int, tuple[Any, Any, Any]]) -> Candidate:
    best = max(c.cv_score for c in cands)  # type: ignore[type-var]
    near = [c for c in cands if c.cv_score >= best - NEAR_TIE]  # type: ignore[operator]
    order = {"kmeans": 0, "minibatch_kmeans": 0, "gaussian_mixture": 1, "hdbscan": 2}
    return min(near, key=lambda c: (round(fitted[c.trial][1], 2), order[c.learner], c.trial))


def _rank(c: Candidate) -> tuple[int, float]:
    return (1, 0.0) if c.cv_score is None else (0, -c.cv_score)
