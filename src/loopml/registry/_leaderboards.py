"""A run's model search in the catalog: every candidate it tried, and how it chose its model."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import sqlalchemy as sa

from loopml.core.records import Candidate, Leaderboard
from loopml.registry import _rows
from loopml.registry._db import jsonable
from loopml.registry._tables import CandidateRow, LeaderboardRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class LeaderboardLog:
    """The candidate and leaderboard methods of ``Catalog`` (mixed in; uses its ``_session``)."""

    def _session(self, action: str, *, write: bool = False) -> AbstractContextManager[Session]:
        raise NotImplementedError  # pragma: no cover - Catalog provides it

    def log_candidates(self, run_id: str, candidates: Sequence[Candidate]) -> None:
        """Append the configurations a run's search tried, in the order given."""
        with self._session("Logging candidates", write=True) as s:
            run = _rows.run_row(s, run_id)
            _append(s, run.id, candidates)

    def candidates(self, run_id: str) -> list[Candidate]:
        """What ``log_candidates`` recorded for a run, in order (a NaN score reads as None)."""
        with self._session("Reading candidates") as s:
            run = _rows.run_row(s, run_id)
            rows = _rows.of_run(s, CandidateRow, run.id, CandidateRow.position)
            return [_rows.candidate_record(r) for r in rows]

    def log_leaderboard(self, run_id: str, board: Leaderboard) -> None:
        """Record a run's search: its candidates (appended, as ``log_candidates``) and how the
        model was chosen (metric, the chosen candidate, ensemble, reason, CV, dropped
        features, calibration, threshold, budget, deterministic). Once per run."""
        candidates = list(board.candidates)
        if board.best not in candidates:  # keep the chosen model readable with the rest
            candidates.append(board.best)
        with self._session("Logging a leaderboard", write=True) as s:
            run = _rows.run_row(s, run_id)
            start = _append(s, run.id, candidates)
            s.add(LeaderboardRow(
                run_id=run.id, metric=board.metric, greater_is_better=board.greater_is_better,
                best=start + candidates.index(board.best), seconds=float(board.seconds),
                budget_s=None if board.budget_s is None else float(board.budget_s),
                cv=board.cv, final=board.final, final_fit=board.final_fit,
                ensemble=jsonable([[n, float(w)] for n, w in board.ensemble]),
                reason=board.reason,
                dropped_features=[[c, r] for c, r in board.dropped_features],
                calibration=board.calibration,
                threshold=None if board.threshold is None else float(board.threshold),
                deterministic=bool(board.deterministic),
            ))  # fmt: skip

    def leaderboard(self, run_id: str) -> Leaderboard | None:
        """The leaderboard ``log_leaderboard`` recorded for a run, or None for a run that
        recorded none (a run before leaderboards were kept, or only candidates)."""
        with self._session("Reading a leaderboard") as s:
            run = _rows.run_row(s, run_id)
            row = s.get(LeaderboardRow, run.id)
            if row is None:
                return None
            rows = _rows.of_run(s, CandidateRow, run.id, CandidateRow.position)
            candidates = tuple(_rows.candidate_record(r) for r in rows)
            best = next(c for r, c in zip(rows, candidates) if r.position == row.best)
            return Leaderboard(
                metric=row.metric, greater_is_better=row.greater_is_better,
                candidates=candidates, best=best, seconds=row.seconds, budget_s=row.budget_s,
                cv=row.cv, final=row.final, final_fit=row.final_fit,
                ensemble=tuple((str(n), float(w)) for n, w in row.ensemble),
                reason=row.reason,
                dropped_features=tuple((str(c), str(r)) for c, r in row.dropped_features),
                calibration=row.calibration, threshold=row.threshold,
                deterministic=row.deterministic,
            )  # fmt: skip


def _append(s: Session, run_id: str, candidates: Sequence[Candidate]) -> int:
    """Add candidates after the run's existing ones; returns the first new position."""
    start = s.scalar(
        sa.select(sa.func.count()).select_from(CandidateRow).where(CandidateRow.run_id == run_id)
    ) or 0
    s.add_all(_rows.candidate_row(run_id, start + i, c) for i, c in enumerate(candidates))
    return start
