"""Records of serving and monitoring: the model bundle, drift references and reports,
windows of the prediction log, calibration and feedback."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from loopml.core.records._base import Status
from loopml.core.records._data import TableSample, Violation

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.contract import Contract
    from loopml.core.records._model import Evaluation

# ---- serve and monitor -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelBundle:
    """What a registered model version holds: the fitted pipeline and all it needs to serve,
    be monitored and be explained."""

    model: Any  # fitted scikit-learn Pipeline (features + estimator)
    contract: Contract  # contract of the feature columns
    task: str
    target: str | None
    feature_columns: tuple[str, ...]
    classes: tuple[Any, ...] | None
    positive_label: Any
    reference: Reference
    evaluation: Evaluation | None = None
    # which form ``model`` is: "pickle" (scikit-learn, unpickled) or "compiled" (JSON and
    # arrays, see loopml.train.CompiledModel), and why that one serves
    serving_form: str = "pickle"
    serving_reason: str | None = None
    # the source's cleaning settings (``CleaningConfig.recorded()``) when it cleans: the
    # model learned from cleaned rows, so served rows are cleaned alike before scoring
    cleaning: dict[str, Any] | None = None
    # the clean table's rows it was trained, tested and referenced on: all, or a sample
    trained_on: TableSample | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureReference:
    """Reference distribution of one column: bins (numeric) or categories, with shares."""

    name: str
    kind: Literal["numeric", "categorical"]
    edges: tuple[float, ...] = ()  # numeric: inner bin edges, len = bins - 1
    categories: tuple[str, ...] = ()  # categorical: the kept categories ("other" is implicit)
    shares: tuple[float, ...] = ()  # per bin / category (+ other), then missing; sums to 1
    rows: int = 0
    # numeric, for Kolmogorov–Smirnov and Wasserstein from binned CDFs: the deduplicated
    # 0, 1/100, ..., 1 quantiles of the present values, the share of present values per
    # right-closed bin (== min, then (e_i-1, e_i]) with their means, and the present values'
    # mean and std
    fine_edges: tuple[float, ...] = ()
    fine_shares: tuple[float, ...] = ()
    fine_means: tuple[float, ...] = ()  # mean of the present values in each fine bin
    mean: float | None = None
    std: float | None = None
    known: tuple[str, ...] = ()  # categorical: every value seen (or allowed); () = not kept


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """Training-time distributions that drift is measured against."""

    features: tuple[FeatureReference, ...]
    prediction: FeatureReference | None = None
    rows: int = 0
    sample: pl.DataFrame | None = None  # bounded sample of reference rows (domain classifier)
    calibration: Calibration | None = None  # score -> probability, from held-out rows
    sampled: TableSample | None = None  # the table (sample) the reference rows came from


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureDrift:
    name: str
    kind: str
    psi: float
    status: Status
    labels: tuple[str, ...]
    reference_shares: tuple[float, ...]
    current_shares: tuple[float, ...]
    # every statistic by name (psi, ks, ks_p, chi2, chi2_p, js, wasserstein, wasserstein_norm)
    stats: dict[str, float] = field(default_factory=dict)
    effect: float = 0.0  # the size of the shift the status was decided on
    null_rate: float = 0.0  # share of missing values in the window
    reference_null_rate: float = 0.0
    unseen: int = 0  # rows with a category outside the reference's (or contract's) values


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftReport:
    model: str
    version: int
    reference_rows: int
    current_rows: int
    window_start: datetime | None
    window_end: datetime | None
    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    status: Status
    thresholds: dict[str, float]
    domain_auc: float | None = None  # AUC of a classifier telling reference from window rows
    domain_status: Status = "ok"
    extra_columns: tuple[str, ...] = ()  # window columns that are neither features nor log's


# ---- monitor: performance ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Calibration:
    """An isotonic map from a classifier's score to the probability it stands for, learnt on
    held-out rows at training time. ``target`` "positive": the positive-class score of a
    binary model to P(label is the positive class); "correct": the top-class probability of a
    multiclass model to P(the prediction is right). Between knots the map is linear; outside
    them it is clipped to the end values."""

    target: Literal["positive", "correct"]
    scores: tuple[float, ...]  # knots, increasing
    probabilities: tuple[float, ...]  # the probability at each knot, non-decreasing
    rows: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowReport:
    """One window of the prediction log: its drift (None below ``monitoring.min_rows``), the
    realised metrics on its labelled rows, the label-free estimate (classifiers) and the
    status, the worst of drift and performance."""

    model: str
    version: int
    start: datetime | None
    end: datetime | None
    rows: int
    drift: DriftReport | None
    labelled_rows: int = 0
    metric: str | None = None  # the primary metric
    realised: dict[str, float] = field(default_factory=dict)
    estimated: dict[str, float] = field(default_factory=dict)
    estimate_gap: float | None = None  # |estimated - realised| on the primary metric
    estimate_disagrees: bool = False
    status: Status = "ok"
    performance_status: Status = "ok"  # the part of the status that performance sets
    reference_score: float | None = None  # the primary metric at training (test split)
    concept_drift_at: datetime | None = None  # first change in the errors of labelled rows
    reasons: tuple[str, ...] = ()  # why the status is not ok, one sentence each
    quality_score: float | None = None  # the window's rows against the contract (0-100)
    quality: tuple[Violation, ...] = ()  # the contract's rules the window's rows broke




# ---- serve: feedback ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedbackResult:
    """What became of a batch of labels sent back: upserted, unknown keys, rejected rows."""

    accepted: int  # label rows upserted into feedback/<model> (a label by id may fill several)
    unknown: int  # rows whose request id and record, or id, no logged prediction has
    invalid: int  # rows rejected: a label outside the model's classes, not a number, no key
    problems: tuple[str, ...] = ()  # one line per unknown or invalid row (the first ones)
    table: str | None = None  # the feedback table written, with its version
