"""Records of the loop and the pipeline: signals, triggers, comparisons, decisions, cycles
and run results."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from loopml.core.records._base import Status

if TYPE_CHECKING:
    from loopml.core.records._data import IngestResult, TableSample
    from loopml.core.records._model import Evaluation, Leaderboard, ModelVersion

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
    sampled: TableSample | None = None  # where training read the clean table
