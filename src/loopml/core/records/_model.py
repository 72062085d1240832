"""Records of the modelling stages: train, evaluate and registry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.records._data import TableSample


# ---- train -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Splits:
    """Train, validation and test frames. The test frame is scored once, at the end."""

    train: pl.DataFrame
    valid: pl.DataFrame
    test: pl.DataFrame
    strategy: str  # "stratified", "random" or "time"
    time_column: str | None = None

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": self.train.height, "valid": self.valid.height, "test": self.test.height}


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One tried configuration: its cross-validated (out-of-fold) score and spread, what it
    cost to fit and to predict, and its weight in the final ensemble.

    ``learner`` is the model family (``lightgbm``, ``random_forest`` ...); ``name`` tells
    candidates of one family apart (``lightgbm/default``, ``lightgbm/optuna-3``); the final
    ensemble itself is a candidate with ``learner="ensemble"``. ``valid_score`` is kept for
    runs recorded before the search scored on out-of-fold predictions only.
    """

    learner: str
    params: dict[str, Any]
    cv_score: float | None
    cv_std: float | None
    valid_score: float | None
    fit_time_s: float  # seconds to fit every fold
    trial: int
    status: str = "ok"  # ok, pruned, failed
    message: str = ""
    name: str = ""
    origin: str = "portfolio"  # portfolio, search, ensemble, champion (a retrain's first tries)
    predict_ms_per_1000: float | None = None  # milliseconds to predict 1,000 rows
    ensemble_weight: float = 0.0  # share in the final ensemble (0 when not a member)


@dataclass(frozen=True, slots=True, kw_only=True)
class Leaderboard:
    """Every candidate of a search and how the final model was chosen.

    ``best`` is the model that was refit and returned: the ensemble candidate when
    ``final == "ensemble"``. ``reason`` says in a sentence or two why it won (and, with
    ``training.prefer``, what was traded for speed).
    """

    metric: str
    greater_is_better: bool
    candidates: tuple[Candidate, ...]
    best: Candidate
    seconds: float
    budget_s: float | None = None
    cv: str = ""  # e.g. "5-fold stratified on 2,310 rows"
    final: str = "single"  # single, ensemble
    final_fit: str = "refit"  # refit (on train + validation), bagged (the fold models)
    ensemble: tuple[tuple[str, float], ...] = ()  # (candidate name, weight)
    reason: str = ""
    dropped_features: tuple[tuple[str, str], ...] = ()  # (column, why it was dropped)
    calibration: str | None = None  # e.g. "isotonic" when it improved out-of-fold log loss
    threshold: float | None = None  # binary decision threshold chosen by the metric
    deterministic: bool = False

    def frontier(self) -> tuple[Candidate, ...]:
        """The accuracy-versus-fit-time frontier: completed candidates that no other
        candidate beats on both score and fit time, fastest first."""
        done = [c for c in self.candidates if c.status == "ok" and c.cv_score is not None]
        done.sort(key=lambda c: (c.fit_time_s, -c.cv_score if self.greater_is_better
                                 else c.cv_score))
        points: list[Candidate] = []
        for c in done:
            if not points or (c.cv_score > points[-1].cv_score if self.greater_is_better
                              else c.cv_score < points[-1].cv_score):
                points.append(c)
        return tuple(points)

    def to_frame(self, kind: str = "polars") -> Any:
        """Every candidate as one row of a Polars frame (``kind="pandas"``: a pandas frame),
        best first as ranked by the search; ``chosen`` marks the returned model and ``params``
        is JSON text."""
        import json
        from dataclasses import asdict

        import polars as pl

        rows = []
        for c in self.candidates:
            row = asdict(c)
            row["params"] = json.dumps(c.params, sort_keys=True, default=str)
            rows.append({"name": c.name or f"{c.learner} #{c.trial}", "chosen": c == self.best,
                         **{k: v for k, v in row.items() if k != "name"}})
        frame = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
        return frame.to_pandas() if kind == "pandas" else frame


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainResult:
    """The fitted model (a scikit-learn Pipeline holding its own feature steps) and how it won."""

    model: Any
    leaderboard: Leaderboard
    task: str
    target: str | None
    feature_columns: tuple[str, ...]
    classes: tuple[Any, ...] | None = None
    positive_label: Any = None
    # where the search ran when not only in this process: the Dask scheduler's address,
    # the trials each worker ran, the Optuna studies, and how members were fitted there
    cluster: dict[str, Any] | None = None


# ---- evaluate ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterTrait:
    """One way a cluster differs from all rows: a numeric feature's mean (``value`` empty) or
    the share of one category ``value``, in the cluster and overall; ``effect`` is the
    difference in overall standard deviations (for a category, of its share's 0/1 indicator)."""

    feature: str
    value: str
    cluster: float
    overall: float
    effect: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterProfile:
    """One cluster: its id, its rows and share of rows, and the traits that set it apart,
    strongest first."""

    cluster: str
    rows: int
    share: float
    traits: tuple[ClusterTrait, ...] = ()



@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """Metrics on the test split, scored once, and the curves the report plots."""

    task: str
    metric: str  # the primary metric
    greater_is_better: bool
    metrics: dict[str, float]
    rows: int
    labels: tuple[str, ...] = ()
    confusion: tuple[tuple[int, ...], ...] | None = None
    roc: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (fpr, tpr)
    pr: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (recall, precision)
    residuals: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (predicted, actual)
    cluster_sizes: tuple[int, ...] | None = None
    cluster_profiles: tuple[ClusterProfile, ...] = ()  # clustering: what sets each apart
    feature_importance: tuple[tuple[str, ...], tuple[float, ...]] | None = None
    # the table (sample) the splits were drawn from: the test rows are that sample's
    sampled: TableSample | None = None

    @property
    def score(self) -> float:
        return self.metrics[self.metric]


# ---- registry ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    id: str
    project: str
    kind: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    params: dict[str, Any]
    metrics: dict[str, float]
    lake_versions: dict[str, int]
    contract_fingerprint: str | None
    git_commit: str | None
    code_version: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersion:
    name: str
    version: int
    run_id: str | None
    task: str
    metric: str
    score: float
    metrics: dict[str, float]
    artifact_uri: str
    created_at: datetime
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"
