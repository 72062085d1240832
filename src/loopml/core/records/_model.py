"""Records of the modelling stages: train, evaluate and registry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl


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
    """One tried configuration: its cross-validated score, validation score and fit time."""

    learner: str
    params: dict[str, Any]
    cv_score: float | None
    cv_std: float | None
    valid_score: float | None
    fit_time_s: float
    trial: int
    status: str = "ok"  # ok, pruned, failed
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Leaderboard:
    metric: str
    greater_is_better: bool
    candidates: tuple[Candidate, ...]
    best: Candidate
    seconds: float


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


# ---- evaluate ----------------------------------------------------------------------------


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
    feature_importance: tuple[tuple[str, ...], tuple[float, ...]] | None = None

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
