"""Records of the data stages: lake, sources, quality and explore."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    """One piece of a source that an ingest commits as a unit (crash-safe, exactly once).

    ``frame`` holds the rows as read, with ``_source_file`` (the file, table, URL or topic,
    never with credentials) and ``_source_row`` (the row's position there: a CSV line number,
    a row number, a message number). ``cursor`` is the source's cursor once this chunk and every
    chunk before it is committed (JSON-able; stored in the catalog by the ingest, never by the
    reader). ``rejected`` holds rows the reader could not parse (a ragged CSV line, a message
    that is not JSON): ``_source_file``, ``_source_row``, ``_raw`` (the text) and ``_reasons``;
    they go to quarantine. ``on_commit`` is called once the chunk and its cursor are durable
    (an MQTT reader acknowledges its messages there).
    """

    source: str
    frame: pl.DataFrame
    cursor: dict[str, Any]
    files: tuple[str, ...] = ()
    rejected: pl.DataFrame | None = None
    on_commit: Callable[[], None] | None = None


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
    hashes: pl.Series | None = None  # the clean rows' row hashes (``quality.row_hash``)


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
    replaced: int = 0  # rows of a keyed source that replaced a row with the same key
    rejected: int = 0  # rows the reader could not parse (in quarantine, counted in the report)
    recovered: bool = False  # finished by a later start after a crash


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
class MissingPatterns:
    """Which columns are missing together. ``combinations`` are the most common sets of
    missing columns with their row counts (the empty set: complete rows); ``nullity`` is the
    correlation of the columns' missing indicators (1: always missing together)."""

    columns: tuple[str, ...]  # columns with some but not all values missing
    combinations: tuple[tuple[tuple[str, ...], int], ...]
    nullity: tuple[tuple[str, ...], tuple[tuple[float, ...], ...]] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Matrix:
    """A labelled matrix of association scores (rows ``y``, columns ``x``)."""

    method: str  # pearson, spearman, cramers_v, correlation_ratio, nullity
    x: tuple[str, ...]
    y: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Trends:
    """Rows, the target (positive share or mean) and numeric column means per period."""

    time_column: str
    period: str  # a Polars duration: 1d, 1w, 1mo ...
    labels: tuple[str, ...]
    rows: tuple[int, ...]
    target: tuple[float | None, ...] | None = None
    means: tuple[tuple[str, tuple[float | None, ...]], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Anomalies:
    """The most anomalous rows of a sample by isolation forest (higher score: stranger)."""

    sampled_rows: int
    columns: tuple[str, ...]  # the columns scored
    flagged: int  # sampled rows the forest calls anomalous
    top_columns: tuple[str, ...]  # the columns shown for the top rows
    top_rows: tuple[tuple[str, ...], ...]  # values as text
    top_scores: tuple[float, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Duplicates:
    """Exact duplicate rows over the profiled columns: ``rows`` extra copies in ``groups``
    groups of identical rows; ``examples`` are the most repeated, with their copies."""

    rows: int
    groups: int
    columns: tuple[str, ...] = ()
    examples: tuple[tuple[tuple[str, ...], int], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class QuarantineSummary:
    """Rows of the source held in its quarantine table, by reason."""

    table: str
    version: int | None
    rows: int
    by_reason: tuple[tuple[str, int], ...] = ()


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
    # the EDA sections beyond the columns (see loopml.explore.profile)
    matrices: tuple[Matrix, ...] = ()  # spearman, cramers_v, correlation_ratio
    missing: MissingPatterns | None = None
    trends: Trends | None = None
    anomalies: Anomalies | None = None
    duplicates: Duplicates | None = None
    quarantine: QuarantineSummary | None = None
    sampling: tuple[tuple[str, int], ...] = ()  # (section, rows it used) where sampled
