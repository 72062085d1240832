"""The project file ``loopml.yaml``: one typed model, loaded once at the edge.

Precedence: defaults < file < ``LOOPML_<SECTION>__<FIELD>`` environment variables < CLI flags.
Each stage receives only its own section.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveInt,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from loopml.core.cleaning import CleaningConfig
from loopml.core.errors import ConfigError, NotAProjectError
from loopml.core.notes import exclude_notes, with_exclude_notes

PROJECT_FILE = "loopml.yaml"
STATE_DIR = ".loopml"

Task = Literal["classification", "regression", "clustering"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Source(_Section):
    """What every source kind has: a name, and how its rows land in the clean table."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    # a primary key: clean rows upsert by it (a Delta merge); of the rows with one key, in the
    # chunk and in the clean table, the largest ``latest_by`` wins (without it, the last to come)
    key: tuple[str, ...] = ()
    latest_by: str | None = None
    partition_by: tuple[str, ...] = ()  # columns the clean table is partitioned by
    # a column whose type differs from the clean table's: a clear error, or the rows to quarantine
    on_type_conflict: Literal["error", "quarantine"] = "error"
    cleaning: CleaningConfig | None = None  # repairs and fixes, each counted (core.cleaning)


_DELIMITER = r"^[\x01-\x09\x0b\x0c\x0e-\x21\x23-\x7f]$"
_QUOTE = r"^[\x01-\x09\x0b\x0c\x0e-\x7f]?$"


class FileSource(_Source):
    """Files: CSV/TSV (also .gz/.zst), Parquet, NDJSON and JSON, as a file, a folder or a glob."""

    kind: Literal["file"] = "file"
    path: str  # a file, a folder or a glob; relative paths are relative to the project
    format: Literal["auto", "csv", "parquet", "ndjson", "json"] = "auto"
    na_values: tuple[str, ...] = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")
    # None: detected from the file (, ; tab |); one ASCII character, not a quote or line end
    delimiter: str | None = Field(default=None, pattern=_DELIMITER)
    quote_char: str | None = Field(default='"', pattern=_QUOTE)  # "" or null: no quoting
    encoding: str | None = None  # None: detected (UTF-8, UTF-8/16 with BOM, else cp1252/latin-1)
    header: bool | None = None  # None: detected (a first row without numbers or dates)
    arrays: Literal["list", "explode"] = "list"  # nested JSON arrays: kept as lists or exploded
    batch_rows: PositiveInt = 500_000  # large files are read and committed this many rows at a time
    storage_options: dict[str, str] = Field(default_factory=dict)  # for s3:// paths


class SqlSource(_Source):
    """A table or a query of a SQL database (PostgreSQL, MariaDB/MySQL, SQLite) by URL.

    Write credentials as ``${VAR}`` in the URL: they are read from the environment and never
    written to logs, events or reports.
    """

    kind: Literal["sql"]
    url: str
    table: str | None = None
    query: str | None = None
    watermark: str | None = None  # only rows with a larger value than the last ingest's
    chunk_rows: PositiveInt = 50_000

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("a sql source needs exactly one of 'table' or 'query'")
        return self


class HttpSource(_Source):
    """A JSON web API, page by page."""

    kind: Literal["http"]
    url: str
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    records: str | None = None  # dotted path to the list of records in each response
    pagination: Literal["none", "page", "offset", "cursor", "link"] = "none"
    page_param: str = "page"
    start_page: int = 1
    offset_param: str = "offset"
    size_param: str | None = None  # the parameter that takes page_size, if the API has one
    page_size: PositiveInt = 100
    cursor_param: str = "cursor"
    next_cursor: str | None = None  # dotted path to the next cursor in the response body
    auth_env: str | None = None  # an environment variable holding the auth header's value
    auth_header: str = "Authorization"
    watermark: str | None = None  # a record field: only records newer than the last ingest's
    since_param: str | None = None  # a parameter that receives the last watermark value
    retries: int = Field(default=5, ge=0, le=20)  # on 429, 5xx and connection errors
    backoff_s: float = Field(default=0.5, ge=0)
    max_retry_wait_s: float = Field(default=120.0, gt=0)  # a longer Retry-After is an error
    timeout_s: float = Field(default=30.0, gt=0)
    max_pages: PositiveInt = 10_000  # pages one ingest reads; the next ingest goes on from there
    pages_per_chunk: PositiveInt = 1  # pages committed to the lake as one unit

    @model_validator(mode="after")
    def _cursor_needs_path(self) -> HttpSource:
        if self.pagination == "cursor" and not self.next_cursor:
            raise ValueError("cursor pagination needs 'next_cursor': where the next cursor is")
        return self


class MqttSource(_Source):
    """An MQTT broker's topics, taken in micro-batches; at least once, de-duplicated by key.

    With ``message_key`` and no ``key``, the message key is the source's key: a message the
    broker delivers twice (after a crash or a dropped connection) replaces its first copy.
    """

    kind: Literal["mqtt"]
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    topics: tuple[str, ...] = Field(min_length=1)
    qos: Literal[0, 1, 2] = 1
    client_id: str | None = None  # a persistent session's id; default: loopml-<source>
    message_key: str | None = None  # a payload field that identifies a message (de-duplication)
    # a micro-batch is committed every N messages ... (at most 65535: the broker holds back
    # more unacknowledged messages than that, so a larger batch could never fill)
    batch_messages: int = Field(default=1000, ge=1, le=65535)
    batch_seconds: float = Field(default=5.0, gt=0)  # ... or every T seconds
    idle_s: float = Field(default=2.0, gt=0)  # without --follow, stop after this long idle
    username_env: str | None = None
    password_env: str | None = None
    retries: int = Field(default=5, ge=0, le=20)  # reconnects in a row before giving up
    backoff_s: float = Field(default=0.5, ge=0)  # doubled after each failed reconnect
    # how long the broker keeps the session (and the messages for it) while loopml is away
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=1, le=4_294_967_295)

    @model_validator(mode="before")
    @classmethod
    def _key_from_message_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("message_key") and not data.get("key"):
            return {**data, "key": (data["message_key"],)}
        return data


class MediaSource(_Source):
    """A folder or glob of images and audio: one row per file with metadata and features."""

    kind: Literal["media"]
    path: str
    histogram_bins: int = Field(default=4, ge=1, le=64)  # per colour channel
    stem_column: str = "stem"  # the file name without extension, to join tabular data on
    files_per_chunk: PositiveInt = 200  # files committed to the lake as one unit


def _source_kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", "file"))
    return str(getattr(value, "kind", "file"))


SourceConfig = Annotated[
    Annotated[FileSource, Tag("file")]
    | Annotated[SqlSource, Tag("sql")]
    | Annotated[HttpSource, Tag("http")]
    | Annotated[MqttSource, Tag("mqtt")]
    | Annotated[MediaSource, Tag("media")],
    Discriminator(_source_kind),
]
"""One source of a project: ``kind`` says which (``file`` when absent)."""


class ProblemConfig(_Section):
    """What to learn: from which source, which target, which task."""

    source: str
    target: str | None = None
    task: Task = "classification"
    time_column: str | None = None
    exclude: tuple[str, ...] = ()  # columns never used as features (leaks, ids)
    positive_label: str | None = None  # binary classification: the class scored by ROC AUC
    id_column: str | None = None  # the user's own row key, carried through scoring and feedback
    group_column: str | None = None  # rows of one group stay in one CV fold (e.g. a customer)


ALL_LEARNERS = (
    "lightgbm", "xgboost", "linear", "random_forest", "extra_trees", "hist_gbm", "knn",
)


class PreferConfig(_Section):
    """Trade a little accuracy for speed: the fastest candidate (or ensemble) whose
    out-of-fold score is within ``fastest_within`` of the best wins, fastest ``by`` the time
    to fit it or the time it takes to predict (what serving and batch scoring pay on every
    row: an ensemble pays for each of its members)."""

    fastest_within: float = Field(ge=0)
    by: Literal["fit", "predict"] = "fit"


class TrainingConfig(_Section):
    # the whole search: portfolio, model-based search, ensembling and the final refit
    time_budget_s: PositiveInt = 120
    metric: Literal[
        "auto", "roc_auc", "log_loss", "f1", "accuracy", "rmse", "mae", "r2", "silhouette"
    ] = "auto"
    # model families tried, the known-good portfolio of each first (clustering has its own)
    learners: tuple[str, ...] = ALL_LEARNERS
    cv_folds: int | None = Field(default=None, ge=2, le=20)  # None: chosen by data size
    # candidates tried in place of wall time, so a run gives the same model on any machine
    deterministic: bool = False
    max_trials: PositiveInt | None = None  # deterministic mode; None: the portfolio + a few
    ensemble: bool = True  # greedy ensemble selection over out-of-fold predictions
    calibrate: bool = True  # when it improves out-of-fold log loss
    prefer: Literal["best"] | PreferConfig = "best"
    valid_size: float = Field(default=0.15, gt=0, lt=0.5)
    test_size: float = Field(default=0.15, gt=0, lt=0.5)
    max_search_rows: PositiveInt = 60_000  # rows the search's CV uses; final fits use all
    seed: int = 0
    # a run or retrain first tries the champion's configurations (its ensemble's members)
    warm_start: bool = True


class ServingConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    model: str | None = None  # "name@alias" or "name@version"; default: <project>@champion
    log_batch_rows: PositiveInt = 1000
    log_flush_s: float = Field(default=2.0, gt=0)
    # rows the prediction log holds in memory at most while the lake cannot take them; past
    # it the oldest pending batch goes to the dead-letter table (never silently dropped)
    log_max_pending_rows: PositiveInt = 200_000
    # rows that neither the log table nor its dead-letter table could take (the lake itself
    # unwritable) are appended here as NDJSON, outside the lake
    dead_letter_dir: str = f"{STATE_DIR}/deadletter"
    # write endpoints (/feedback, /reload, /promote, /rollback) need this bearer token when set;
    # it is read from LOOPML_SERVING__TOKEN rather than written into loopml.yaml
    token: str | None = None
    protect_predict: bool = False  # also require the token on /predict
    max_body_mb: float = Field(default=10.0, gt=0)  # a larger request body is refused (413)
    max_records: PositiveInt = 10_000  # records per /predict request at most (else 422)
    timeout_s: float = Field(default=10.0, gt=0)  # scoring that takes longer is a 503
    log_format: Literal["json", "text"] = "json"  # the server's log lines on stderr
    workers: PositiveInt = 1  # processes sharing the port (loopml serve --workers)
    shadow: str | None = None  # an alias (e.g. "challenger") scored off the response path
    follow_s: float = Field(default=2.0, gt=0)  # how often the server checks its alias


class MonitoringConfig(_Section):
    bins: int = Field(default=10, ge=2, le=100)
    warn_psi: float = Field(default=0.1, gt=0)
    alert_psi: float = Field(default=0.25, gt=0)
    min_rows: PositiveInt = 100
    # a window of the prediction log: a duration ("12h", "1d", "7d") or a row count ("5000rows")
    window: str = Field(default="7d", pattern=r"^[1-9][0-9]*(s|m|h|d|w|rows)$")
    # drift is flagged when a shift is both large (an effect size: Wasserstein distance in
    # reference standard deviations, or Jensen–Shannon distance) and significant (p below p_value)
    warn_distance: float = Field(default=0.05, gt=0)
    alert_distance: float = Field(default=0.1, gt=0)
    p_value: float = Field(default=0.01, gt=0, lt=1)
    # multivariate drift: AUC of a classifier telling reference rows from window rows
    warn_auc: float = Field(default=0.55, gt=0.5, le=1)
    alert_auc: float = Field(default=0.65, gt=0.5, le=1)
    domain_rows: int = Field(default=5000, ge=0)  # rows per side for it; 0 turns it off


class LoopConfig(_Section):
    """The retraining policy: when to retrain, and when a challenger may replace the champion."""

    # what may start a retraining: "drift", "decay", "concept_drift", "schedule", "new_labels"
    triggers: tuple[
        Literal["drift", "decay", "concept_drift", "schedule", "new_labels"], ...
    ] = ("drift", "decay", "concept_drift", "new_labels")
    schedule: str | None = Field(default=None, pattern=r"^[1-9][0-9]*(s|m|h|d|w)$")
    min_new_labels: PositiveInt = 1000  # "new_labels": labelled rows since the last training
    decay_margin: float = Field(default=0.05, ge=0)  # below the reference score by this much
    floors: dict[str, float] = Field(default_factory=dict)  # e.g. {roc_auc: 0.7}
    estimate_tolerance: float = Field(default=0.05, ge=0)  # estimated vs realised disagreement
    min_gain: float = Field(default=0.0, ge=0)  # a challenger must win by more than this
    bootstrap: PositiveInt = 1000  # resamples for the paired interval of the difference
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    webhook: str | None = None  # POSTed JSON on drift alert, decay, promotion and rollback
    webhook_retries: int = Field(default=3, ge=0, le=10)
    every: str = Field(default="10m", pattern=r"^[1-9][0-9]*(s|m|h|d|w)$")  # --watch period


class StorageConfig(_Section):
    lake_uri: str = f"{STATE_DIR}/lake"  # a folder, or any URI Delta supports (s3://bucket/lake)
    # Delta's options for an object-store lake (AWS_ENDPOINT_URL, AWS_REGION, AWS_ALLOW_HTTP ...);
    # write secrets as ${VAR}. Delta also reads AWS_* variables that no option here overrides.
    storage_options: dict[str, str] = Field(default_factory=dict)
    # 'loopml lake optimize' keeps the files that versions younger than this still need
    retention_hours: int = Field(default=168, ge=0)
    catalog_url: str = f"sqlite:///{STATE_DIR}/catalog.db"
    artifacts_uri: str = f"{STATE_DIR}/artifacts"
    reports_dir: str = f"{STATE_DIR}/reports"


class ComputeConfig(_Section):
    """Where stages run: ``local`` (one process) or a Dask scheduler's address, where
    validation, profiling and batch scoring run per partition of a table on the workers and
    merge, and training runs its search trials on the workers (Optuna studies in the catalog)
    and its LightGBM / XGBoost final fit with ``lightgbm.dask`` / ``xgboost.dask``. A cluster
    needs a catalog that every machine reaches: PostgreSQL.

    ``sample_rows`` bounds the rows of the clean table that training, its drift reference
    and the profile's row-wise sections read: a larger table is read as a deterministic sample
    of this many rows (chosen by row hash, part by part), so memory follows this number, not
    the table."""

    cluster: str = "local"
    sample_rows: PositiveInt = 2_000_000

    @field_validator("cluster")
    @classmethod
    def _address(cls, value: str) -> str:
        import re

        value = value.strip()
        if value != "local" and not re.fullmatch(r"(tcp|tls)://[^\s/:]+:[0-9]{1,5}", value):
            raise ValueError(f"{value!r} is not 'local' nor a Dask scheduler address; write "
                             "'local' or one such as tcp://scheduler:8786")
        return value

    @property
    def local(self) -> bool:
        return self.cluster == "local"


class ProjectConfig(_Section):
    """The whole project file."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$")
    sources: tuple[SourceConfig, ...] = Field(min_length=1)
    problem: ProblemConfig
    training: TrainingConfig = TrainingConfig()
    serving: ServingConfig = ServingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    loop: LoopConfig = LoopConfig()
    storage: StorageConfig = StorageConfig()
    compute: ComputeConfig = ComputeConfig()

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, sources: tuple[SourceConfig, ...]) -> tuple[SourceConfig, ...]:
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique, found {names}")
        return sources

    def source(self, name: str | None = None) -> SourceConfig:
        """The named source, or the problem's source."""
        from loopml.core.errors import unknown_name

        name = name or self.problem.source
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(
            unknown_name("source", name, [s.name for s in self.sources]),
            hint=f"Name one of the sources listed under 'sources:' in {PROJECT_FILE}.",
        )

    # ---- loading and saving -------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, *, env: dict[str, str] | None = None) -> ProjectConfig:
        """Read ``loopml.yaml``, apply ``LOOPML_*`` environment overrides and validate."""
        import yaml

        path = Path(path)
        if path.is_dir():
            path = path / PROJECT_FILE
        if not path.exists():
            raise NotAProjectError(
                f"No {PROJECT_FILE} in {path.parent.resolve()}.",
                hint="Run 'loopml init DATA --target COLUMN' to create a project, "
                "or change to the folder that holds loopml.yaml.",
            )
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} must hold a mapping, found {type(raw).__name__}.")
        raw = _apply_env(raw, os.environ if env is None else env)
        return cls.from_dict(raw, origin=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, origin: str = PROJECT_FILE) -> ProjectConfig:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "(top level)"
                lines.append(f"  {where}: {err['msg']}")
            raise ConfigError(
                f"{origin} has {len(lines)} problem(s):\n" + "\n".join(lines),
                hint="Fix the listed keys; 'loopml init' writes a valid file to start from.",
            ) from None

    def to_yaml(self, *, notes: Mapping[str, str] | None = None) -> str:
        """The project file's text; ``notes`` are comments on ``problem.exclude`` items (why a
        column is left out), written after each one as ``- dep_delay  # why``."""
        import yaml

        data = self.model_dump(mode="json", exclude_defaults=False)
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        return with_exclude_notes(text, notes) if notes else text

    def save(self, path: str | Path, *, notes: Mapping[str, str] | None = None) -> Path:
        """Write ``loopml.yaml``. Without ``notes``, the comments an existing file has on the
        ``problem.exclude`` items still excluded are kept (``exclude_notes``)."""
        path = Path(path)
        if path.is_dir():
            path = path / PROJECT_FILE
        if notes is None and path.exists():
            notes = exclude_notes(path.read_text())
        path.write_text(self.to_yaml(notes=notes))
        return path


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration_s(text: str) -> float:
    """Seconds in a duration such as ``"90s"``, ``"10m"``, ``"12h"``, ``"7d"`` or ``"2w"``.

    >>> duration_s("10m"), duration_s("7d")
    (600.0, 604800.0)
    """
    import re

    match = re.fullmatch(r"([1-9][0-9]*)(s|m|h|d|w)", text.strip())
    if match is None:
        raise ConfigError(
            f"{text!r} is not a duration.",
            hint="Write a whole number and a unit: 90s, 10m, 12h, 7d or 2w.",
        )
    return float(int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def window_spec(text: str) -> tuple[Literal["time", "rows"], float]:
    """A monitoring window: ``("time", seconds)`` for ``"7d"``, ``("rows", n)`` for ``"5000rows"``.

    >>> window_spec("1d"), window_spec("5000rows")
    (('time', 86400.0), ('rows', 5000.0))
    """
    text = text.strip()
    if text.endswith("rows") and text[:-4].isdigit() and int(text[:-4]) > 0:
        return "rows", float(int(text[:-4]))
    return "time", duration_s(text)


def _apply_env(raw: dict[str, Any], env: Any) -> dict[str, Any]:
    """Overlay ``LOOPML_SECTION__FIELD=value`` variables (values parsed as YAML scalars)."""
    import yaml

    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for key, value in env.items():
        if not key.startswith("LOOPML_") or "__" not in key:
            continue
        section, _, field = key[len("LOOPML_") :].lower().partition("__")
        if section not in ProjectConfig.model_fields or section in ("sources", "name"):
            continue
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        out.setdefault(section, {})
        if isinstance(out[section], dict):
            out[section][field] = parsed
    return out
