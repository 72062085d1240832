"""The catalog's tables as SQLAlchemy 2 typed ORM classes.

``migrations/versions`` must create exactly these tables; a test compares the two with
Alembic's autogenerate on SQLite and PostgreSQL. Change a table here, then add a revision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # naive times are taken to be UTC already
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UTCDateTime,
    }


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_project_started_at", "project", "started_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    params: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    lake_versions: Mapped[dict[str, Any]]
    contract_fingerprint: Mapped[str | None] = mapped_column(String(128))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    code_version: Mapped[str] = mapped_column(String(50))


class CandidateRow(Base):
    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("run_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32), ForeignKey("runs.id", ondelete="CASCADE"))
    position: Mapped[int]
    learner: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, Any]]
    cv_score: Mapped[float | None] = mapped_column(Double)
    cv_std: Mapped[float | None] = mapped_column(Double)
    valid_score: Mapped[float | None] = mapped_column(Double)
    fit_time_s: Mapped[float] = mapped_column(Double)
    trial: Mapped[int]
    status: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(200), server_default="")
    origin: Mapped[str] = mapped_column(String(20), server_default="portfolio")
    predict_ms_per_1000: Mapped[float | None] = mapped_column(Double)
    ensemble_weight: Mapped[float] = mapped_column(Double, server_default="0")


class LeaderboardRow(Base):
    """How a run's search chose its model; the candidates themselves are ``CandidateRow``s."""

    __tablename__ = "leaderboards"

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(50))
    greater_is_better: Mapped[bool]
    best: Mapped[int]  # the position of the chosen candidate among the run's candidates
    seconds: Mapped[float] = mapped_column(Double)
    budget_s: Mapped[float | None] = mapped_column(Double)
    cv: Mapped[str] = mapped_column(Text)
    final: Mapped[str] = mapped_column(String(20))  # single, ensemble
    final_fit: Mapped[str] = mapped_column(String(20))  # refit, bagged
    ensemble: Mapped[list[Any]]  # [[candidate name, weight], ...]
    reason: Mapped[str] = mapped_column(Text)
    dropped_features: Mapped[list[Any]]  # [[column, reason], ...]
    calibration: Mapped[str | None] = mapped_column(String(50))
    threshold: Mapped[float | None] = mapped_column(Double)
    deterministic: Mapped[bool]


class IngestRow(Base):
    __tablename__ = "ingests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(String(200), index=True)
    files: Mapped[list[Any]]
    rows_in: Mapped[int] = mapped_column(BigInteger)
    rows_accepted: Mapped[int] = mapped_column(BigInteger)
    rows_quarantined: Mapped[int] = mapped_column(BigInteger)
    duplicates: Mapped[int] = mapped_column(BigInteger)
    contract_fingerprint: Mapped[str] = mapped_column(String(128))
    raw_table: Mapped[str] = mapped_column(String(300))
    raw_version: Mapped[int] = mapped_column(BigInteger)
    clean_table: Mapped[str] = mapped_column(String(300))
    clean_version: Mapped[int] = mapped_column(BigInteger)
    quarantine_table: Mapped[str | None] = mapped_column(String(300))
    quarantine_version: Mapped[int | None] = mapped_column(BigInteger)
    report: Mapped[dict[str, Any]]  # violations, coerced and extra columns
    started_at: Mapped[datetime] = mapped_column(index=True)
    seconds: Mapped[float] = mapped_column(Double)


class ArtifactRow(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32), ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(50))
    path: Mapped[str] = mapped_column(Text)  # relative to the artifacts root
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class ModelVersionRow(Base):
    __tablename__ = "model_versions"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    task: Mapped[str] = mapped_column(String(50))
    metric: Mapped[str] = mapped_column(String(50))
    score: Mapped[float] = mapped_column(Double)
    metrics: Mapped[dict[str, Any]]
    path: Mapped[str] = mapped_column(Text)  # relative to the artifacts root
    created_at: Mapped[datetime]


def _version_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        ondelete="CASCADE",
    )


class ModelFileRow(Base):
    __tablename__ = "model_files"
    __table_args__ = (_version_fk(),)

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(500), primary_key=True)  # posix, in the folder
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)


class AliasRow(Base):
    __tablename__ = "model_aliases"
    __table_args__ = (_version_fk(),)

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    alias: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(300), index=True)
    payload: Mapped[dict[str, Any]]


class SourceCursorRow(Base):
    """Where each source's last committed chunk ended (file hashes, a watermark, an offset)."""

    __tablename__ = "source_cursors"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    cursor: Mapped[dict[str, Any]]
    ingest_id: Mapped[str] = mapped_column(String(64))  # the ingest that stored it
    updated_at: Mapped[datetime]


class IngestIntentRow(Base):
    """An ingest (or a quarantine replay) that was started: ``pending`` until its lake commits
    and its cursor are in; a restart finishes it (``done``) or gives it up (``undone``)."""

    __tablename__ = "ingest_intents"
    __table_args__ = (Index("ix_ingest_intents_status_source", "status", "source"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # "ingest" or "replay"
    status: Mapped[str] = mapped_column(String(20))  # "pending", "done", "undone"
    cursor_before: Mapped[dict[str, Any] | None]
    cursor_after: Mapped[dict[str, Any] | None]
    # lake versions before the ingest wrote anything (None: the table did not exist)
    versions: Mapped[dict[str, Any]]
    contract_fingerprint: Mapped[str] = mapped_column(String(128))
    details: Mapped[dict[str, Any]]  # the contract, files, run id ...
    counts: Mapped[dict[str, Any] | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
