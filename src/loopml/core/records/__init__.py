"""The frozen records stages exchange. Change one with ``dataclasses.replace``, never mutate.

Frames inside records are Polars DataFrames; numbers that reports plot are plain tuples so
that every record can be rendered, compared and serialised without the stage that made it.
Stages import records from here; the modules behind it group them by the part of the loop
that makes them.
"""

from loopml.core.records._base import (
    Status,
    plain_json,
    to_plain,
)
from loopml.core.records._data import (
    Chunk,
    ColumnProfile,
    IngestResult,
    LabelConflict,
    LabelIssue,
    LabelQuality,
    Leakage,
    LeakSuspect,
    Profile,
    SourceBatch,
    TableRef,
    Validated,
    ValidationReport,
    Violation,
)
from loopml.core.records._loop import (
    CheckItem,
    CheckReport,
    Comparison,
    Decision,
    Evidence,
    LoopCycle,
    RunResult,
    Signals,
    Trigger,
    TriggerKind,
)
from loopml.core.records._model import (
    Candidate,
    ClusterProfile,
    ClusterTrait,
    Evaluation,
    Leaderboard,
    ModelVersion,
    Run,
    Splits,
    TrainResult,
)
from loopml.core.records._monitor import (
    Calibration,
    DriftReport,
    FeatureDrift,
    FeatureReference,
    FeedbackResult,
    ModelBundle,
    Reference,
    WindowReport,
)

__all__ = [
    "Calibration",
    "Candidate",
    "CheckItem",
    "CheckReport",
    "ClusterProfile",
    "ClusterTrait",
    "ColumnProfile",
    "Chunk",
    "Comparison",
    "Decision",
    "DriftReport",
    "Evaluation",
    "Evidence",
    "FeatureDrift",
    "FeatureReference",
    "FeedbackResult",
    "IngestResult",
    "LabelConflict",
    "LabelIssue",
    "LabelQuality",
    "Leaderboard",
    "Leakage",
    "LeakSuspect",
    "LoopCycle",
    "ModelBundle",
    "ModelVersion",
    "Profile",
    "Reference",
    "Run",
    "RunResult",
    "Signals",
    "SourceBatch",
    "Splits",
    "Status",
    "TableRef",
    "TrainResult",
    "Trigger",
    "TriggerKind",
    "Validated",
    "ValidationReport",
    "Violation",
    "WindowReport",
    "plain_json",
    "to_plain",
]
