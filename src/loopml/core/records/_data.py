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


@dataclass(frozen=True, slots=True, kw_only=True)
class TablePart:
    """One Parquet file of one lake table version: the unit a stage works on per partition.
    ``index`` is its place among the version's files, ``offset`` the table position of its
    first row (the files in this order are the table as ``Lake.read`` gives it)."""

    table: str
    version: int
    path: str  # relative to the table's folder, as the Delta log names it
    index: int
    offset: int
    rows: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TableSample:
    """Where a stage read a table that may not fit in memory: the version, its rows, and how
    many of them it read and how they were chosen. ``method`` is ``"all"`` (the whole version,
    as ``Lake.read`` gives it), ``"row_hash"`` (the rows whose clean-row hash, mixed with
    ``seed``, is among the lowest: the same rows on every read of the version) or
    ``"position"`` (the same by a hash of the row's table position, for a table without row
    hashes).

    >>> TableSample(table="clean/f", version=3, rows_in_table=10_000_000, rows_read=2_000_000,
    ...             method="row_hash").note
    'clean/f@v3: a sample of 2,000,000 of 10,000,000 rows (20.0%, by row hash, seed 0)'
    """

    table: str
    version: int
    rows_in_table: int
    rows_read: int
    method: str
    seed: int = 0

    @property
    def whole(self) -> bool:
        return self.method == "all"

    @property
    def note(self) -> str:
        """One line a report or ``loopml lineage`` shows."""
        at = f"{self.table}@v{self.version}"
        if self.whole:
            return f"{at}: all {self.rows_in_table:,} rows"
        share = 100 * self.rows_read / max(self.rows_in_table, 1)
        how = "row hash" if self.method == "row_hash" else "row position"
        return (f"{at}: a sample of {self.rows_read:,} of {self.rows_in_table:,} rows "
                f"({share:.1f}%, by {how}, seed {self.seed})")


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
    """How many rows broke one rule on one column (``column`` is ``*`` for a rule over
    several columns or whole rows), with an example value; ``warn`` rules only report."""

    column: str
    rule: str  # a ColumnSpec rule ("type", "min" ...), "duplicate", "missing_column", a Rule
    rows: int
    example: str | None = None
    severity: str = "error"


@dataclass(frozen=True, slots=True, kw_only=True)
class CleaningChange:
    """What one cleaning step changed in one column (``*``: whole rows): how many values or
    rows, and the most frequent changes as ``(before, after, count)``."""

    step: str  # "repair", "categories", "duplicates", "missing", "outliers"
    column: str
    action: str  # e.g. "number", "merge", "exact", "key", "drop", "impute median", "clip", "flag"
    rows: int
    examples: tuple[tuple[str, str, int], ...] = ()


CLEANING_STEPS = ("repair", "categories", "duplicates", "missing", "outliers")


@dataclass(frozen=True, slots=True, kw_only=True)
class CleaningLog:
    """Every change the cleaning of a batch made, by step and column (empty changes left out).

    >>> log = CleaningLog(changes=(CleaningChange(step="missing", column="price",
    ...                                           action="impute median", rows=3),))
    >>> log.by_step()
    {'missing': 3}
    """

    changes: tuple[CleaningChange, ...] = ()

    def by_step(self) -> dict[str, int]:
        """Rows or values changed per step, in the order the steps run."""
        out = {step: 0 for step in CLEANING_STEPS}
        for c in self.changes:
            out[c.step] = out.get(c.step, 0) + c.rows
        return {step: n for step, n in out.items() if n}

    def plus(self, other: CleaningLog, *, examples: int = 5) -> CleaningLog:
        """Both logs summed per step, column and action (the examples' counts too)."""
        merged: dict[tuple[str, str, str], dict[str, Any]] = {}
        for c in (*self.changes, *other.changes):
            at = merged.setdefault((c.step, c.column, c.action), {"rows": 0, "ex": {}})
            at["rows"] += c.rows
            for before, after, n in c.examples:
                at["ex"][(before, after)] = at["ex"].get((before, after), 0) + n
        order = {s: i for i, s in enumerate(CLEANING_STEPS)}
        out = []
        for (step, column, action), at in sorted(
                merged.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1], kv[0][2])):
            top = sorted(at["ex"].items(), key=lambda kv: (-kv[1], kv[0]))[:examples]
            out.append(CleaningChange(step=step, column=column, action=action, rows=at["rows"],
                                      examples=tuple((b, a, n) for (b, a), n in top)))
        return CleaningLog(changes=tuple(out))


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
    warned_rows: int = 0  # accepted rows that broke only ``warn`` rules
    cleaning: CleaningLog | None = None  # what cleaning changed, when the source cleans

    def __post_init__(self) -> None:
        if self.rows_in != self.rows_accepted + self.rows_quarantined:
            raise AssertionError(
                f"rows_in {self.rows_in} != accepted {self.rows_accepted} + "
                f"quarantined {self.rows_quarantined}"
            )

    @property
    def quality_score(self) -> float:
        """``quality_score(rows_in, quarantined, warned)`` of this batch."""
        return quality_score(self.rows_in, self.rows_quarantined, self.warned_rows)

    def plus(self, other: ValidationReport) -> ValidationReport:
        """The report of both batches as one, ``self``'s rows first: counts summed, each
        violation (column, rule, severity) counted over both with the first example, columns
        listed once. Batch rules (null rates, uniqueness, the key, duplicates) judge each
        batch alone, so they are summed as found, not judged again over both.

        >>> def one(n, example):
        ...     broken = Violation(column="x", rule="min", rows=1, example=example)
        ...     return ValidationReport(source="s", contract_fingerprint="f", rows_in=n,
        ...                             rows_accepted=n - 1, rows_quarantined=1, duplicates=0,
        ...                             violations=(broken,))
        >>> a, b = one(3, "-1"), one(2, "-7")
        >>> both = a.plus(b)
        >>> both.rows_in, both.rows_quarantined, both.violations[0].rows, both.violations[0].example
        (5, 2, 2, '-1')
        """
        if (other.source, other.contract_fingerprint) != (self.source, self.contract_fingerprint):
            raise ValueError(
                f"Cannot add the report of {other.source} (contract {other.contract_fingerprint})"
                f" to that of {self.source} (contract {self.contract_fingerprint})."
            )
        merged: dict[tuple[str, str, str], Violation] = {}
        for v in (*self.violations, *other.violations):
            key = (v.column, v.rule, v.severity)
            seen = merged.get(key)
            merged[key] = v if seen is None else Violation(
                column=v.column, rule=v.rule, rows=seen.rows + v.rows, severity=v.severity,
                example=seen.example if seen.example is not None else v.example)
        cleaning = (self.cleaning if other.cleaning is None else other.cleaning
                    if self.cleaning is None else self.cleaning.plus(other.cleaning))
        return ValidationReport(
            source=self.source,
            contract_fingerprint=self.contract_fingerprint,
            rows_in=self.rows_in + other.rows_in,
            rows_accepted=self.rows_accepted + other.rows_accepted,
            rows_quarantined=self.rows_quarantined + other.rows_quarantined,
            duplicates=self.duplicates + other.duplicates,
            violations=tuple(merged.values()),
            coerced_columns=_union(self.coerced_columns, other.coerced_columns),
            extra_columns=_union(self.extra_columns, other.extra_columns),
            warned_rows=self.warned_rows + other.warned_rows,
            cleaning=cleaning,
        )


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    """The names of both, each once, in the order first seen."""
    return tuple(dict.fromkeys((*first, *second)))


def quality_score(rows_in: int, quarantined: int, warned: int) -> float:
    """A data-quality score from 0 to 100: the share of rows that broke no rule, a row that
    broke only ``warn`` rules counting half; 100 for no rows.

    >>> quality_score(1000, 20, 10)
    97.5
    """
    if rows_in <= 0:
        return 100.0
    return round(100.0 * (rows_in - quarantined - 0.5 * warned) / rows_in, 2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Validated:
    """The result of validating a frame: a report, the clean rows and the quarantined rows.

    ``quarantined`` holds the original values as text plus ``_reasons`` (one string a row).
    """

    report: ValidationReport
    clean: pl.DataFrame
    quarantined: pl.DataFrame
    hashes: pl.Series | None = None  # the clean rows' row hashes (``quality.row_hash``)
    # with cleaning: the cleaning log over some of the clean rows (their positions in
    # ``clean``), for a caller that sets more rows aside (duplicates of earlier ingests)
    recount: Callable[[pl.Series], CleaningLog] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Revalidated:
    """A lake table version validated again against its source's contract, part by part:
    the merged report and the rows that break an ``error`` rule (values as text, in table
    order, with ``_reasons``). The clean table stays as it is."""

    table: TableRef
    report: ValidationReport
    quarantined: pl.DataFrame
    parts: int  # Parquet files validated one at a time
    cluster: str  # "local" or the Dask scheduler that ran the parts
    path: str  # the HTML report of ``report``


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
class LabelConflict:
    """Rows with identical features but different labels: the shared feature values (as
    text, the first few columns) and each label's row count, most frequent first."""

    rows: int
    features: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelIssue:
    """A suspected mislabel: ``row`` is the row's position in the profiled frame."""

    row: int
    given: str
    suggested: str
    self_confidence: float  # out-of-fold probability of the given label
    margin: float  # probability of the suggested label less that of the given one


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelQuality:
    """Ground-truth checks: conflicting labels, suspected mislabels, class balance."""

    rows: int  # labelled rows checked for conflicts
    features: tuple[str, ...]  # the columns whose equality makes rows "identical"
    conflicting_groups: int
    conflicting_rows: int
    conflicts: tuple[LabelConflict, ...] = ()  # the largest groups
    # classification: (class, share) most frequent first; majority / minority count
    class_shares: tuple[tuple[str, float], ...] = ()
    imbalance_ratio: float | None = None
    imbalanced: bool = False
    # confident learning on out-of-fold probabilities of a cheap model over a sample
    sampled_rows: int = 0
    folds: int = 0
    model: str = ""
    suspected: int = 0  # rows of the sample flagged as suspected mislabels
    estimated_noise: float | None = None  # share of the sample's labels estimated wrong
    thresholds: tuple[tuple[str, float], ...] = ()  # per class: mean self-confidence
    issues: tuple[LabelIssue, ...] = ()  # the most suspicious first


@dataclass(frozen=True, slots=True, kw_only=True)
class LeakSuspect:
    """A column that should not be a feature, and why. ``check`` is ``"predicts target"``,
    ``"id-like"`` or ``"after prediction time"``; ``score`` the evidence's number, if any."""

    column: str
    check: str
    reason: str
    score: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Leakage:
    """Leakage checks: each feature's out-of-fold score alone, and the suspects."""

    sampled_rows: int
    metric: str  # "roc_auc", "balanced_accuracy" or "r2"; "" without a target
    threshold: float  # a single feature scoring at least this is suspected
    scores: tuple[tuple[str, float], ...] = ()  # (column, score), best first
    suspects: tuple[LeakSuspect, ...] = ()
    time_column: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The suspected columns, each once, in the order found."""
        return tuple(dict.fromkeys(s.column for s in self.suspects))


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
    label_quality: LabelQuality | None = None
    leakage: Leakage | None = None
    # the EDA sections beyond the columns (see loopml.explore.profile)
    matrices: tuple[Matrix, ...] = ()  # spearman, cramers_v, correlation_ratio
    missing: MissingPatterns | None = None
    trends: Trends | None = None
    anomalies: Anomalies | None = None
    duplicates: Duplicates | None = None
    quarantine: QuarantineSummary | None = None
    sampling: tuple[tuple[str, int], ...] = ()  # (section, rows it used) where sampled
