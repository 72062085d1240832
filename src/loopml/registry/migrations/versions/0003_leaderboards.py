"""Model selection: each candidate's name, origin, predict time and ensemble weight, and how
a run's search chose its model (the leaderboard's summary).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CANDIDATE_COLUMNS = ("name", "origin", "predict_ms_per_1000", "ensemble_weight")


def upgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("name", sa.String(length=200), server_default="",
                                   nullable=False))
        batch.add_column(sa.Column("origin", sa.String(length=20), server_default="portfolio",
                                   nullable=False))
        batch.add_column(sa.Column("predict_ms_per_1000", sa.Double(), nullable=True))
        batch.add_column(sa.Column("ensemble_weight", sa.Double(), server_default="0",
                                   nullable=False))
    op.create_table(
        "leaderboards",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("metric", sa.String(length=50), nullable=False),
        sa.Column("greater_is_better", sa.Boolean(), nullable=False),
        sa.Column("best", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=False),
        sa.Column("budget_s", sa.Double(), nullable=True),
        sa.Column("cv", sa.Text(), nullable=False),
        sa.Column("final", sa.String(length=20), nullable=False),
        sa.Column("final_fit", sa.String(length=20), nullable=False),
        sa.Column("ensemble", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("dropped_features", sa.JSON(), nullable=False),
        sa.Column("calibration", sa.String(length=50), nullable=True),
        sa.Column("threshold", sa.Double(), nullable=True),
        sa.Column("deterministic", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_leaderboards_run_id_runs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_leaderboards")),
    )


def downgrade() -> None:
    op.drop_table("leaderboards")
    with op.batch_alter_table("candidates") as batch:
        for column in _CANDIDATE_COLUMNS:
            batch.drop_column(column)
