"""The whole loop on a Dask cluster against the same project in one process: ingest, validate,
profile, train (search trials on two worker processes through an Optuna study in the
catalog's PostgreSQL, the LightGBM final fit by ``lightgbm.dask``), evaluate, register and
score the clean table part by part. Where it ran changes the counts and reasons not at all,
and the model's test quality only within noise."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
import yaml

from loopml.core.records import RunResult
from loopml.pipeline import Project
from tests.e2e.test_cluster import _flights

pytestmark = [pytest.mark.slow, pytest.mark.services]

# deterministic: trial counts, not the clock, so both runs try the same number of candidates
# (the 8 portfolio configurations of both learners, feature selection's, then Optuna trials
# to 12 in all); 2 folds keep it small
TRAINING = {"learners": ["lightgbm", "linear"], "deterministic": True, "max_trials": 12,
            "cv_folds": 2, "time_budget_s": 60}
# Both runs test on the same 900 held-out rows (the split is seeded and the clean tables are
# equal). The standard error of a ROC AUC near 0.75 on 900 rows with ~20% positives is about
# 0.02 (Hanley-McNeil); two searches that try different Optuna configurations (the shared
# study is asked by two workers at once) and a final LightGBM fit whose histograms are built
# per worker differ by less than that in expectation. 0.03, 1.5 standard errors, fails a
# real loss of quality (a broken final fit scores ~0.5) without failing on noise.
AUC_TOLERANCE = 0.03


def _project(root: Path, data: Path, catalog_url: str | None) -> Path:
    project = Project.init(data, target="delayed", directory=root, name="flights",
                           training=TRAINING)
    if catalog_url is not None:
        config = yaml.safe_load(project.file.read_text())
        config["storage"]["catalog_url"] = catalog_url
        project.file.write_text(yaml.safe_dump(config, sort_keys=False))
    return project.file


def _loop(file: Path, address: str | None, out: Path) -> dict:
    """Run the project (on the cluster at ``address`` when given), then validate and score
    its clean table there."""
    with Project(file) as project:
        result: RunResult = project.run(cluster=address)
        validated = project.validate(cluster=address)
        scored = project.predict(None, out, table="clean/data", cluster=address)
        return {
            "result": result, "validated": validated, "scored": pl.read_parquet(scored),
            "quarantine": project.quarantine(), "rows": project.lake.read("clean/data").height,
            "train_events": project.catalog.events(kind="train"),
            "profile": Path(result.reports["profile"]).is_file(),
        }


def test_the_loop_on_a_cluster_equals_the_loop_in_one_process(
    cluster: str, postgres_url: str, tmp_path: Path
) -> None:
    """Same ingest and validation counts and quarantine reasons, same candidate learners,
    test quality within AUC_TOLERANCE, every clean row scored; the search's trials ran on
    both workers through the shared study and the catalog says so."""
    _flights(tmp_path / "data")
    local = _loop(_project(tmp_path / "local", tmp_path / "data", None), None,
                  tmp_path / "local.parquet")
    remote = _loop(_project(tmp_path / "remote", tmp_path / "data", postgres_url), cluster,
                   tmp_path / "remote.parquet")

    # ingest and validation: the same rows, counts and reasons
    for key in ("rows_in", "rows_accepted", "rows_quarantined"):
        assert [getattr(i.report, key) for i in remote["result"].ingests] == [
            getattr(i.report, key) for i in local["result"].ingests]
    assert remote["quarantine"] == local["quarantine"]
    for key in ("rows_in", "rows_accepted", "rows_quarantined", "warned_rows"):
        assert getattr(remote["validated"].report, key) == getattr(
            local["validated"].report, key)
    assert remote["validated"].cluster == cluster and local["validated"].cluster == "local"
    assert remote["profile"] and local["profile"]

    # training: the same learners tried, the same split, quality within noise
    boards = [r["result"].leaderboard for r in (local, remote)]
    learners = [{c.learner for c in b.candidates if c.learner != "ensemble"} for b in boards]
    assert learners[0] == learners[1] == {"lightgbm", "linear"}
    assert local["result"].split_sizes == remote["result"].split_sizes
    scores = [r["result"].evaluation.score for r in (local, remote)]
    assert scores[0] > 0.6  # the comparison means something only for a model that learned
    assert abs(scores[0] - scores[1]) <= AUC_TOLERANCE, scores

    # where it ran: the catalog's event, the shared study, the distributed final fit
    [event] = remote["train_events"]
    payload = event["payload"]
    assert payload["cluster"] == cluster and payload["workers"] == 2
    searched = [c for c in boards[1].candidates if c.origin == "search"]
    tried = [c for c in boards[1].candidates if c.origin != "ensemble"]
    assert len(searched) >= 2
    assert sum(payload["trials_per_worker"].values()) + payload["trials_here"] == len(tried)
    assert payload["trials_here"] <= 2  # feature selection's, at most two; the rest on workers
    assert all(n >= 1 for n in payload["trials_per_worker"].values())
    run_id = remote["result"].run_id
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            studies = dict(conn.execute(sa.text(
                "SELECT s.study_name, count(t.trial_id) FROM loopml_optuna.studies s "
                "JOIN loopml_optuna.trials t ON t.study_id = s.study_id GROUP BY s.study_name"
            )).all())
    finally:
        engine.dispose()
    assert sum(studies.values()) == len(searched)
    assert set(studies) == set(payload["studies"])
    assert all(name.startswith(f"loopml-{run_id}-") for name in studies)
    members = [name for name, _ in boards[1].ensemble] or [boards[1].best.name]
    assert any(name.startswith("lightgbm/") for name in members)
    for name in members:
        if name.startswith("lightgbm/"):
            assert payload["final_fit"][name] == "lightgbm.dask"
    [local_event] = local["train_events"]
    assert local_event["payload"]["cluster"] == "local"

    # batch scoring of the clean table: every row, on both
    for run in (local, remote):
        assert run["scored"].height == run["rows"]
        assert run["scored"]["_prediction"].null_count() == 0


def test_a_worker_killed_mid_search_has_its_trials_run_again_elsewhere(
    cluster: str, postgres_url: str, tmp_path: Path
) -> None:
    """The first worker to start its share of the Optuna search dies (its process exits);
    the share runs again on a live worker, and the run registers a model as usual."""
    import os

    from distributed import Client
    from distributed.diagnostics.plugin import WorkerPlugin

    marker = tmp_path / "killed"

    class KillOnce(WorkerPlugin):  # defined here, so it reaches the workers by value
        name = "loopml-test-kill-once"

        def __init__(self, path: str):
            self.path = path

        def transition(self, key, start, finish, **kwargs):
            if finish == "executing" and str(key).startswith("loopml-search-"):
                try:
                    fd = os.open(self.path, os.O_CREAT | os.O_EXCL)  # only the first dies
                except FileExistsError:
                    return
                os.close(fd)
                os._exit(1)

    _flights(tmp_path / "data")
    file = _project(tmp_path / "p", tmp_path / "data", postgres_url)
    with Client(cluster, set_as_default=False) as client:
        client.register_plugin(KillOnce(str(marker)))
        try:
            with Project(file) as project:
                result = project.run(cluster=cluster)
                [event] = project.catalog.events(kind="train")
        finally:
            client.unregister_worker_plugin(KillOnce.name)
    assert marker.exists()  # a worker did die mid-search
    assert result.model_version.version == 1 and result.evaluation.score > 0.6
    searched = [c for c in result.leaderboard.candidates if c.origin == "search"]
    assert len(searched) == TRAINING["max_trials"] - sum(
        c.origin == "portfolio" for c in result.leaderboard.candidates)
    payload = event["payload"]
    assert sum(payload["trials_per_worker"].values()) + payload["trials_here"] == len(
        [c for c in result.leaderboard.candidates if c.origin != "ensemble"])
