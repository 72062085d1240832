"""Runs, candidates, ingests, run artifacts and events."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import loopml
from loopml.core.errors import IntegrityError, RegistryError
from loopml.core.records import Candidate, Leaderboard
from loopml.registry import Catalog


def test_run_lifecycle(catalog: Catalog, finish) -> None:
    """A run starts running, and finishing records metrics, lake versions, contract and code."""
    run_id = catalog.start_run(project="flights", params={"budget": 60, "learners": ("a", "b")})
    started = catalog.get_run(run_id)
    assert len(run_id) == 32 and started.status == "running" and started.finished_at is None
    assert started.params == {"budget": 60, "learners": ["a", "b"]}
    assert started.code_version == loopml.__version__ and started.kind == "train"

    done = finish(run_id)
    assert done == catalog.get_run(run_id)
    assert done.status == "finished" and done.metrics == {"roc_auc": 0.91}
    assert done.lake_versions == {"clean/flights": 3}
    assert (done.contract_fingerprint, done.git_commit) == ("c0ffee", "abc1234")
    assert done.started_at.tzinfo is not None and done.finished_at is not None
    assert done.finished_at.utcoffset() == timedelta(0)
    assert done.started_at <= done.finished_at <= datetime.now(UTC)


def test_finish_twice_or_with_bad_status_fails(catalog: Catalog, finish) -> None:
    """A run finishes once, and only with a known final status."""
    run_id = catalog.start_run(project="p", params={})
    with pytest.raises(RegistryError) as bad:
        finish(run_id, status="done")
    assert "finished" in bad.value.hint
    finish(run_id, status="failed")
    with pytest.raises(RegistryError, match="already finished"):
        finish(run_id)
    assert catalog.get_run(run_id).status == "failed"


def test_non_finite_metrics_and_odd_params_round_trip(catalog: Catalog, finish) -> None:
    """NaN and infinite metrics survive storage; tuples, sets and paths in params become JSON."""
    run_id = catalog.start_run(project="p", params={"path": Path("/x"), "cols": {"b", "a"}})
    run = finish(run_id, metrics={"r2": float("nan"), "loss": float("inf")})
    assert math.isnan(run.metrics["r2"]) and run.metrics["loss"] == math.inf
    assert catalog.get_run(run_id).params == {"path": "/x", "cols": ["a", "b"]}


def test_runs_lists_newest_first_by_project(catalog: Catalog) -> None:
    """runs() filters by project, puts the newest first and honours the limit."""
    ids = [catalog.start_run(project="a", params={"i": i}) for i in range(3)]
    other = catalog.start_run(project="b", params={})
    assert [r.id for r in catalog.runs(project="a")] == ids[::-1]
    assert [r.id for r in catalog.runs(limit=1)] == [other]
    assert len(catalog.runs()) == 4
    with pytest.raises(RegistryError):
        catalog.runs(limit=0)


def test_run_found_by_unique_prefix(catalog: Catalog) -> None:
    """A unique prefix of at least six digits finds a run, as with git commits."""
    run_id = catalog.start_run(project="p", params={})
    assert catalog.get_run(run_id[:8]).id == run_id


def test_unknown_run_names_close_matches(catalog: Catalog) -> None:
    """An unknown run id raises RegistryError listing recent ids, the closest first."""
    run_id = catalog.start_run(project="p", params={})
    typo = run_id[:-1] + ("0" if run_id[-1] != "0" else "1")
    with pytest.raises(RegistryError) as err:
        catalog.get_run(typo)
    assert f"Did you mean {run_id!r}" in err.value.message and err.value.hint
    with pytest.raises(RegistryError):
        catalog.log_candidates("nope", [])


def test_candidates_round_trip_in_order(catalog: Catalog) -> None:
    """Candidates come back in logging order with learner, params, scores and fit time."""
    run_id = catalog.start_run(project="p", params={})
    first = [
        Candidate(
            learner="linear",
            params={"C": 1.0},
            cv_score=0.8,
            cv_std=0.01,
            valid_score=0.79,
            fit_time_s=0.5,
            trial=0,
        ),
        Candidate(
            learner="lightgbm",
            params={"num_leaves": 31},
            cv_score=0.9,
            cv_std=0.02,
            valid_score=0.88,
            fit_time_s=2.0,
            trial=1,
        ),
    ]
    failed = Candidate(
        learner="xgboost",
        params={},
        cv_score=float("nan"),
        cv_std=None,
        valid_score=None,
        fit_time_s=0.1,
        trial=2,
        status="failed",
        message="out of memory",
    )
    catalog.log_candidates(run_id, first)
    catalog.log_candidates(run_id, [failed])
    got = catalog.candidates(run_id)
    assert got[:2] == first
    assert got[2].status == "failed" and got[2].cv_score is None and got[2].message
    assert catalog.candidates(catalog.start_run(project="p", params={})) == []


def test_ingest_counts_are_recorded(catalog: Catalog, make_ingest) -> None:
    """An ingest keeps its counts in and out, tables, violations and run."""
    run_id = catalog.start_run(project="flights", params={})
    catalog.record_ingest(make_ingest(), run_id=run_id)
    catalog.record_ingest(
        make_ingest(
            "ing-2", source="weather", quarantine=None, started_at=datetime(2026, 1, 3, tzinfo=UTC)
        )
    )
    newest, oldest = catalog.ingests()
    assert newest["ingest_id"] == "ing-2" and newest["quarantine"] is None
    assert newest["run_id"] is None
    assert (oldest["rows_in"], oldest["rows_accepted"], oldest["rows_quarantined"]) == (100, 97, 3)
    assert oldest["rows_in"] == oldest["rows_accepted"] + oldest["rows_quarantined"]
    assert oldest["clean"] == {"name": "clean/flights", "version": 3}
    assert oldest["violations"][0]["rule"] == "type" and oldest["files"] == ["a.csv", "b.csv"]
    assert oldest["run_id"] == run_id and oldest["started_at"] == make_ingest().started_at
    assert [i["ingest_id"] for i in catalog.ingests(source="flights")] == ["ing-1"]


def test_recording_an_ingest_again_updates_it(catalog: Catalog, make_ingest) -> None:
    """Recording the same ingest id twice keeps one row with the latest values."""
    catalog.record_ingest(make_ingest())
    catalog.record_ingest(make_ingest(seconds=9.0))
    assert [i["seconds"] for i in catalog.ingests()] == [9.0]


def test_run_artifact_is_stored_and_checked(catalog: Catalog, tmp_path: Path) -> None:
    """A logged report is copied with its sha256; fetching a changed copy fails."""
    run_id = catalog.start_run(project="p", params={})
    report = tmp_path / "report.html"
    report.write_text("<html>v1</html>")
    stored = Path(catalog.log_artifact(run_id, report, name="evaluation.html"))
    report.write_text("<html>v2</html>")  # the original may change; the copy does not
    assert catalog.fetch_artifact(run_id, "evaluation.html").read_text() == "<html>v1</html>"
    listed = catalog.artifacts(run_id)
    assert [(a["name"], a["kind"], a["size"]) for a in listed] == [
        ("evaluation.html", "report", 15)
    ]

    catalog.log_artifact(run_id, report, name="evaluation.html")  # replaces
    assert catalog.fetch_artifact(run_id, "evaluation.html").read_text() == "<html>v2</html>"
    stored.write_text("forged")
    with pytest.raises(IntegrityError) as err:
        catalog.fetch_artifact(run_id, "evaluation.html")
    assert err.value.file == "evaluation.html" and err.value.expected != err.value.found
    with pytest.raises(RegistryError, match="Did you mean 'evaluation.html'"):
        catalog.fetch_artifact(run_id, "evaluaton.html")
    with pytest.raises(RegistryError, match="not a file"):
        catalog.log_artifact(run_id, tmp_path / "missing.html", name="x")


def test_events_filter_and_order(catalog: Catalog) -> None:
    """Events come back newest first, filtered by subject or kind, with their payload."""
    catalog.log_event("deployed", "flights", {"version": 1, "host": "a"})
    catalog.log_event("drift", "flights", {"psi": 0.3})
    catalog.log_event("deployed", "weather", {"version": 2})
    assert [e["kind"] for e in catalog.events(subject="flights")] == ["drift", "deployed"]
    deployed = catalog.events(kind="deployed", limit=1)
    assert deployed[0]["subject"] == "weather" and deployed[0]["payload"] == {"version": 2}
    assert deployed[0]["at"].tzinfo is not None


def _candidate(name: str, score: float | None, fit: float, **kw) -> Candidate:
    learner = name.split("/")[0]
    return Candidate(learner=learner, name=name, params={"n": 1}, cv_score=score, cv_std=0.01,
                     valid_score=None, fit_time_s=fit, trial=0, predict_ms_per_1000=3.5, **kw)


def test_leaderboard_round_trips_with_every_field(catalog: Catalog) -> None:
    """A run's leaderboard reads back equal: candidates with name, origin, predict time and
    ensemble weight, the chosen model, ensemble, reason, CV, dropped features, calibration,
    threshold, budget and the deterministic flag."""
    members = [_candidate("lightgbm/default", 0.91, 2.0, ensemble_weight=0.6),
               _candidate("linear/default", 0.89, 0.2, origin="portfolio",
                          ensemble_weight=0.4),
               _candidate("xgboost/optuna-1", None, 0.5, origin="search", status="failed",
                          message="boom")]
    ensemble = Candidate(learner="ensemble", name="ensemble", origin="ensemble", params={},
                         cv_score=0.92, cv_std=None, valid_score=None, fit_time_s=2.2, trial=3,
                         predict_ms_per_1000=7.0, ensemble_weight=1.0)
    board = Leaderboard(
        metric="roc_auc", greater_is_better=True, candidates=(*members, ensemble), best=ensemble,
        seconds=9.5, budget_s=10.0, cv="5-fold stratified on 2,310 rows", final="ensemble",
        final_fit="bagged", ensemble=(("lightgbm/default", 0.6), ("linear/default", 0.4)),
        reason="the ensemble beats lightgbm/default by 0.01 out of fold",
        dropped_features=(("id", "ID-like: unique per row"), ("k", "constant")),
        calibration="isotonic", threshold=0.42, deterministic=True,
    )
    run_id = catalog.start_run(project="p", params={})
    catalog.log_leaderboard(run_id, board)
    got = catalog.leaderboard(run_id)
    assert got == board
    assert got.frontier() == board.frontier()
    assert catalog.candidates(run_id) == list(board.candidates)
    assert catalog.leaderboard(catalog.start_run(project="p", params={})) is None


def test_leaderboard_whose_best_is_not_listed_keeps_it(catalog: Catalog) -> None:
    """A chosen model missing from the candidates is stored with them, so it reads back."""
    listed = _candidate("linear/default", 0.8, 0.1)
    best = _candidate("knn/default", 0.85, 0.3)
    board = Leaderboard(metric="accuracy", greater_is_better=True, candidates=(listed,),
                        best=best, seconds=1.0)
    run_id = catalog.start_run(project="p", params={})
    catalog.log_leaderboard(run_id, board)
    got = catalog.leaderboard(run_id)
    assert got.best == best and got.candidates == (listed, best)
