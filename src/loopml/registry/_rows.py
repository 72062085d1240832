"""Records to rows and back: runs, candidates, ingests, artifacts and events."""

from __future__ import annotations

import math
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loopml.core.errors import RegistryError
from loopml.core.records import Candidate, IngestResult, Run
from loopml.registry._db import floats, jsonable
from loopml.registry._refs import unknown
from loopml.registry._tables import ArtifactRow, CandidateRow, EventRow, IngestRow, RunRow

T = TypeVar("T")
R = TypeVar("R")


def now() -> datetime:
    return datetime.now(UTC)


def code_version() -> str:
    """The running loopml's version."""
    from loopml.core.version import VERSION

    return VERSION


def limit(value: int) -> int:
    if value < 1:
        raise RegistryError(f"limit must be at least 1, got {value}.")
    return int(value)


def run_row(session: Session, run_id: str) -> RunRow:
    """The run with this id, or with this unique prefix of at least 6 hex digits."""
    row = session.get(RunRow, run_id)
    if row is not None:
        return row
    if len(run_id) >= 6 and all(c in "0123456789abcdef" for c in run_id):
        found = list(session.scalars(sa.select(RunRow).where(RunRow.id.startswith(run_id))))
        if len(found) == 1:
            return found[0]
        if found:
            raise RegistryError(
                f"Run id prefix {run_id!r} matches {len(found)} runs: "
                f"{', '.join(r.id for r in found[:5])}.",
                hint="Give more digits of the run id.",
            )
    recent = session.scalars(sa.select(RunRow.id).order_by(RunRow.started_at.desc()).limit(20))
    raise unknown(
        "run",
        run_id,
        list(recent),
        hint="Run ids are listed by Catalog.runs() (the 20 newest are shown).",
        empty="the catalog holds no runs yet",
    )


def of_run(session: Session, table: type[T], run_id: str, order: Any) -> list[T]:
    """The rows of ``table`` (candidates, ingests, artifacts) that belong to a run."""
    query = sa.select(table).where(table.run_id == run_id)  # type: ignore[attr-defined]
    return list(session.scalars(query.order_by(order)))


def from_row(record: type[R], row: Any, **overrides: Any) -> R:
    """Build ``record`` from the row's same-named columns, with ``overrides`` for the rest."""
    names = [f.name for f in fields(record) if f.name not in overrides]  # type: ignore[arg-type]
    return record(**{n: getattr(row, n) for n in names}, **overrides)


def run_record(row: RunRow) -> Run:
    return from_row(Run, row, metrics=floats(row.metrics), lake_versions=dict(row.lake_versions))


def candidate_row(run_id: str, position: int, c: Candidate) -> CandidateRow:
    return CandidateRow(
        run_id=run_id,
        position=position,
        learner=c.learner,
        params=jsonable(c.params),
        cv_score=_finite(c.cv_score),
        cv_std=_finite(c.cv_std),
        valid_score=_finite(c.valid_score),
        fit_time_s=float(c.fit_time_s),
        trial=c.trial,
        status=c.status,
        message=c.message,
        name=c.name,
        origin=c.origin,
        predict_ms_per_1000=_finite(c.predict_ms_per_1000),
        ensemble_weight=float(c.ensemble_weight),
    )


def candidate_record(row: CandidateRow) -> Candidate:
    return from_row(Candidate, row)


def fill_ingest(row: IngestRow, result: IngestResult, run_id: str | None) -> IngestRow:
    report = result.report
    row.run_id = run_id
    row.source, row.files = result.source, list(result.files)
    row.rows_in, row.rows_accepted = report.rows_in, report.rows_accepted
    row.rows_quarantined, row.duplicates = report.rows_quarantined, report.duplicates
    row.contract_fingerprint = report.contract_fingerprint
    row.raw_table, row.raw_version = result.raw.name, result.raw.version
    row.clean_table, row.clean_version = result.clean.name, result.clean.version
    quarantine = result.quarantine
    row.quarantine_table = None if quarantine is None else quarantine.name
    row.quarantine_version = None if quarantine is None else quarantine.version
    row.report = jsonable(
        {
            "violations": [asdict(v) for v in report.violations],
            "coerced_columns": report.coerced_columns,
            "extra_columns": report.extra_columns,
            "warned_rows": report.warned_rows,
            "quality_score": report.quality_score,
            "cleaning": None if report.cleaning is None else asdict(report.cleaning),
        }
    )
    row.started_at, row.seconds = result.started_at, float(result.seconds)
    return row


def ingest_dict(row: IngestRow) -> dict[str, Any]:
    """An ingest as plain data: ids, source, files, the four counts, the contract fingerprint,
    the raw/clean/quarantine tables as ``{"name", "version"}``, violations and timing."""
    quarantine = None
    if row.quarantine_table is not None:
        quarantine = {"name": row.quarantine_table, "version": row.quarantine_version}
    return {
        "ingest_id": row.id,
        "run_id": row.run_id,
        "source": row.source,
        "files": row.files,
        "rows_in": row.rows_in,
        "rows_accepted": row.rows_accepted,
        "rows_quarantined": row.rows_quarantined,
        "duplicates": row.duplicates,
        "contract_fingerprint": row.contract_fingerprint,
        "raw": {"name": row.raw_table, "version": row.raw_version},
        "clean": {"name": row.clean_table, "version": row.clean_version},
        "quarantine": quarantine,
        "started_at": row.started_at,
        "seconds": row.seconds,
        **row.report,
    }


def artifact_dict(row: ArtifactRow, root: Path) -> dict[str, Any]:
    return {
        "run_id": row.run_id,
        "name": row.name,
        "kind": row.kind,
        "path": str(root / row.path),
        "sha256": row.sha256,
        "size": row.size,
        "created_at": row.created_at,
    }


def event_row(kind: str, subject: str, payload: dict[str, Any]) -> EventRow:
    return EventRow(at=now(), kind=kind, subject=subject, payload=jsonable(payload))


def event_dict(row: EventRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at,
        "kind": row.kind,
        "subject": row.subject,
        "payload": row.payload,
    }


def _finite(value: float | None) -> float | None:
    """Scores of failed trials (NaN, inf) are stored as missing."""
    return None if value is None or not math.isfinite(value) else float(value)
