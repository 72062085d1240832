"""The frozen records stages exchange. Change one with ``dataclasses.replace``, never mutate.

Frames inside records are Polars DataFrames; numbers that reports plot are plain tuples so
that every record can be rendered, compared and serialised without the stage that made it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.contract import Contract

Status = Literal["ok", "warn", "alert"]


def to_plain(record: Any) -> dict[str, Any]:
    """A record as nested plain data (for JSON), skipping frames and fitted objects."""
    import polars as pl

    def keep(value: Any) -> bool:
        return not isinstance(value, pl.DataFrame)

    return asdict(record, dict_factory=lambda kv: {k: v for k, v in kv if keep(v)})


def plain_json(value: Any) -> Any:
    """``value`` as strict JSON data: times in ISO 8601, NaN and infinities as null.

    >>> from datetime import datetime, UTC
    >>> plain_json({"at": datetime(2013, 7, 1, tzinfo=UTC), "score": float("nan"), "n": (1,)})
    {'at': '2013-07-01T00:00:00+00:00', 'score': None, 'n': [1]}
    """
    import math
    from datetime import date

    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return plain_json(value.item())
    return str(value)


# ---- lake --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TableRef:
    """One version of one lake table, e.g. ``TableRef(name="raw/flights", version=3)``."""

    name: str
    version: int

    def __str__(self) -> str:
        return f"{self.name}@v{self.version}"


# ---- sources -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceBatch:
    """What a source read: the rows (with ``_source_file``/``_source_row``) and the files."""

    source: str
    frame: pl.DataFrame
    files: tuple[str, ...]
    rows_per_file: tuple[int, ...]


# ---- quality -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """How many rows broke one rule on one column, with an example value."""

    column: str
    rule: str  # "type", "not_null", "min", "max", "allowed", "duplicate", "missing_column"
    rows: int
    example: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationReport:
    source: str
    contract_fingerprint: str
    rows_in: int
    rows_accepted: int
    rows_quarantined: int
    duplicates: int
    violations: tuple[Violation, ...] = ()
    coerced_columns: tuple[str, ...] = ()  # columns whose values were converted to the type
    extra_columns: tuple[str, ...] = ()  # columns in the data that the contract does not name

    def __post_init__(self) -> None:
        if self.rows_in != self.rows_accepted + self.rows_quarantined:
            raise AssertionError(
                f"rows_in {self.rows_in} != accepted {self.rows_accepted} + "
                f"quarantined {self.rows_quarantined}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Validated:
    """The result of validating a frame: a report, the clean rows and the quarantined rows.

    ``quarantined`` holds the original values as text plus ``_reasons`` (one string a row).
    """

    report: ValidationReport
    clean: pl.DataFrame
    quarantined: pl.DataFrame


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    ingest_id: str
    source: str
    files: tuple[str, ...]
    report: ValidationReport
    raw: TableRef
    clean: TableRef
    quarantine: TableRef | None
    started_at: datetime
    seconds: float


# ---- explore -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnProfile:
    """Statistics of one column. ``kind`` is numeric, categorical, boolean, datetime or text."""

    name: str
    kind: str
    count: int
    nulls: int
    distinct: int
    stats: dict[str, float] = field(default_factory=dict)  # mean, std, min, q25, median, ...
    histogram: tuple[tuple[str, ...], tuple[int, ...]] | None = None  # (bin labels, counts)
    top_values: tuple[tuple[str, ...], tuple[int, ...]] | None = None  # (values, counts)
    # relationship to the target: (bin/category labels, target mean or positive rate, counts)
    target_relation: tuple[tuple[str, ...], tuple[float, ...], tuple[int, ...]] | None = None
    association: float | None = None  # 0..1: how much this column tells about the target
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    source: str
    rows: int
    target: str | None
    task: str
    columns: tuple[ColumnProfile, ...]
    target_distribution: tuple[tuple[str, ...], tuple[int, ...]] | None = None
    correlations: tuple[tuple[str, ...], tuple[tuple[float, ...], ...]] | None = None
    sampled_rows: int | None = None  # rows the heavier statistics were computed on
    table: TableRef | None = None
    # classification: the positive class as training chooses it (loopml.core.labels), in
    # the target's own type (e.g. "yes", 1, True); None for multiclass unless configured
    positive_label: Any = None


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


# ---- loop: triggers, comparison, decisions ----------------------------------------------


TriggerKind = Literal["drift", "decay", "concept_drift", "schedule", "new_labels"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Signals:
    """What the loop knows about the champion now: the newest window's drift and performance,
    concept drift in its errors, the time and labels since it was trained."""

    model: str
    version: int | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    drift_status: Status | None = None  # the newest window's drift; None when not measured
    drifted: tuple[str, ...] = ()  # columns whose drift is alert
    metric: str | None = None  # the primary metric
    greater_is_better: bool = True
    realised: float | None = None  # primary metric on the newest window's labelled rows
    estimated: float | None = None  # label-free estimate on the newest window
    reference_score: float | None = None  # the champion's score when it was registered
    concept_drift: bool = False  # a change detected in the stream of realised errors
    seconds_since_training: float | None = None
    new_labels: int = 0  # labelled rows that arrived since the champion was trained


@dataclass(frozen=True, slots=True, kw_only=True)
class Trigger:
    """One reason to retrain, e.g. ``Trigger(kind="decay", reason="realised roc_auc 0.61 ...")``."""

    kind: TriggerKind
    reason: str
    value: float | None = None
    threshold: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """Champion and challenger scored on the same rows, and the paired bootstrap interval of
    the difference challenger − champion, signed so that a positive value favours the
    challenger (for a lower-is-better metric it is champion − challenger)."""

    metric: str
    greater_is_better: bool
    rows: int
    champion: float
    challenger: float
    difference: float
    low: float
    high: float
    confidence: float
    bootstrap: int
    seed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """One set of rows both models were scored on: a window of labelled predictions that
    neither trained on, or the challenger's held-out test split."""

    name: str  # "window" or "test split"
    comparison: Comparison
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """Whether a new model version replaces the champion, and why, with its evidence."""

    promote: bool
    alias: str  # the alias the new version gets: "champion" or "challenger"
    reason: str  # one sentence a person reads in 'loopml events'
    candidate_score: float  # the new version's primary score on the main evidence
    champion_score: float | None  # the champion's score on the same rows
    champion_version: int | None
    candidate_version: int | None = None
    metric: str | None = None
    min_gain: float = 0.0
    triggers: tuple[Trigger, ...] = ()
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopCycle:
    """One cycle of ``loopml loop``: the signals, the triggers that fired, and the decision
    (None when no trigger fired and nothing was trained)."""

    model: str
    champion_version: int
    signals: Signals
    triggers: tuple[Trigger, ...]
    reason: str
    seconds: float
    windows: int = 0  # windows monitored in this cycle
    decision: Decision | None = None
    challenger_version: int | None = None
    training_rows: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckItem:
    """One gate of ``loopml check``: what was checked, the value, the limit, the verdict."""

    name: str  # e.g. "floor roc_auc" or "window vs champion v2"
    value: float | None
    threshold: float | None
    passed: bool
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckReport:
    """Whether the newest model version may ship: not worse than the champion on the same
    evidence, and not below the configured floors."""

    model: str
    version: int
    champion_version: int | None
    items: tuple[CheckItem, ...]

    @property
    def passed(self) -> bool:
        return all(i.passed for i in self.items)


# ---- pipeline ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    run_id: str
    ingests: tuple[IngestResult, ...]
    leaderboard: Leaderboard
    evaluation: Evaluation
    model_version: ModelVersion
    decision: Decision
    reports: dict[str, str]  # report name -> path
    seconds: float
    split_sizes: dict[str, int] = field(default_factory=dict)


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


# ---- serve: feedback ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedbackResult:
    """What became of a batch of labels sent back: upserted, unknown keys, rejected rows."""

    accepted: int  # label rows upserted into feedback/<model> (a label by id may fill several)
    unknown: int  # rows whose request id and record, or id, no logged prediction has
    invalid: int  # rows rejected: a label outside the model's classes, not a number, no key
    problems: tuple[str, ...] = ()  # one line per unknown or invalid row (the first ones)
    table: str | None = None  # the feedback table written, with its version
