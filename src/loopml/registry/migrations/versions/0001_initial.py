"""The catalog's first schema: runs, candidates, ingests, artifacts, model versions with their
files and aliases, and events.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _run_fk(table: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"], ["runs.id"], name=op.f(f"fk_{table}_run_id_runs"), ondelete=ondelete
    )


def _version_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        name=op.f(f"fk_{table}_name_model_versions"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        _when("started_at"),
        _when("finished_at", nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("lake_versions", sa.JSON(), nullable=False),
        sa.Column("contract_fingerprint", sa.String(length=128), nullable=True),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.Column("code_version", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index("ix_runs_project_started_at", "runs", ["project", "started_at"])

    op.create_table(
        "candidates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("learner", sa.String(length=100), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("cv_score", sa.Double(), nullable=True),
        sa.Column("cv_std", sa.Double(), nullable=True),
        sa.Column("valid_score", sa.Double(), nullable=True),
        sa.Column("fit_time_s", sa.Double(), nullable=False),
        sa.Column("trial", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        _run_fk("candidates", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidates")),
        sa.UniqueConstraint("run_id", "position", name=op.f("uq_candidates_run_id_position")),
    )

    op.create_table(
        "ingests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("rows_in", sa.BigInteger(), nullable=False),
        sa.Column("rows_accepted", sa.BigInteger(), nullable=False),
        sa.Column("rows_quarantined", sa.BigInteger(), nullable=False),
        sa.Column("duplicates", sa.BigInteger(), nullable=False),
        sa.Column("contract_fingerprint", sa.String(length=128), nullable=False),
        sa.Column("raw_table", sa.String(length=300), nullable=False),
        sa.Column("raw_version", sa.BigInteger(), nullable=False),
        sa.Column("clean_table", sa.String(length=300), nullable=False),
        sa.Column("clean_version", sa.BigInteger(), nullable=False),
        sa.Column("quarantine_table", sa.String(length=300), nullable=True),
        sa.Column("quarantine_version", sa.BigInteger(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=False),
        _when("started_at"),
        sa.Column("seconds", sa.Double(), nullable=False),
        _run_fk("ingests", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingests")),
    )
    op.create_index(op.f("ix_ingests_run_id"), "ingests", ["run_id"])
    op.create_index(op.f("ix_ingests_source"), "ingests", ["source"])
    op.create_index(op.f("ix_ingests_started_at"), "ingests", ["started_at"])

    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _when("created_at"),
        _run_fk("artifacts", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifacts")),
        sa.UniqueConstraint("run_id", "name", name=op.f("uq_artifacts_run_id_name")),
    )

    op.create_table(
        "model_versions",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("task", sa.String(length=50), nullable=False),
        sa.Column("metric", sa.String(length=50), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        _when("created_at"),
        _run_fk("model_versions", "SET NULL"),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_model_versions")),
    )
    op.create_index(op.f("ix_model_versions_run_id"), "model_versions", ["run_id"])

    op.create_table(
        "model_files",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _version_fk("model_files"),
        sa.PrimaryKeyConstraint("name", "version", "path", name=op.f("pk_model_files")),
    )

    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("alias", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _when("updated_at"),
        _version_fk("model_aliases"),
        sa.PrimaryKeyConstraint("name", "alias", name=op.f("pk_model_aliases")),
    )

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _when("at"),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_at"), "events", ["at"])
    op.create_index(op.f("ix_events_kind"), "events", ["kind"])
    op.create_index(op.f("ix_events_subject"), "events", ["subject"])


def downgrade() -> None:
    for table in (
        "events",
        "model_aliases",
        "model_files",
        "model_versions",
        "artifacts",
        "ingests",
        "candidates",
        "runs",
    ):
        op.drop_table(table)  # dropping a table drops its indexes too
