"""The same project on a Dask cluster: a real ``distributed.LocalCluster`` of two worker
processes validates, profiles and scores the clean table part by part, with the catalog in
PostgreSQL, and gets what one process gets: the same counts, rules broken and quarantine
reasons as validating the whole table at once, the same profile statistics, and the same
predictions row for row as scoring the table locally and as scoring it exported to a file;
also when a worker's process is killed mid-stage."""

from __future__ import annotations

import os
import zipfile
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest
import yaml
from distributed.diagnostics.plugin import WorkerPlugin
from polars.testing import assert_frame_equal

from loopml.core.contract import PROVENANCE_COLUMNS, Contract
from loopml.pipeline import Project
from loopml.quality import validate
from tests.conftest import nycflights_dir
from tests.e2e.conftest import WORKER_ENV

pytestmark = [pytest.mark.slow, pytest.mark.services]
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

TRAINING = {"learners": ["lightgbm"], "deterministic": True, "max_trials": 2, "cv_folds": 2,
            "time_budget_s": 30}


def _flights(folder: Path) -> None:
    """6,000 January flights in three CSV files: three ingested chunks, three Parquet files."""
    with zipfile.ZipFile(nycflights_dir() / "flights.csv.zip") as z:
        frame = pl.read_csv(z.read("flights.csv"), null_values=["NA"], infer_schema_length=None)
    frame = (
        frame.filter(pl.col("month") == 1).sample(6000, seed=3)
        .select("day", "hour", "carrier", "origin", "dest", "distance", "dep_delay", "arr_delay")
        .with_columns((pl.col("arr_delay") > 15).alias("delayed")).drop("arr_delay")
    )
    folder.mkdir()
    for i, part in enumerate(frame.iter_slices(2000)):
        part.write_csv(folder / f"part{i}.csv")


def _stricter(contract_file: Path) -> None:
    """The contract after review: tighter bounds and fewer carriers, so re-validation finds
    rows that break error rules in every part, and one warn rule."""
    raw = yaml.safe_load(contract_file.read_text())
    for column in raw["columns"]:
        if column["name"] == "dep_delay":
            column["max"] = 60
        if column["name"] == "distance":
            column["max"] = 2000
            column["severity"] = {"max": "warn"}
        if column["name"] == "carrier":
            column["allowed"] = {k: v for k, v in column["allowed"].items()
                                 if k not in ("EV", "MQ")}
    contract_file.write_text(yaml.safe_dump(raw, sort_keys=False))


def _violations(report) -> list[tuple]:
    return sorted((v.column, v.rule, v.severity, v.rows, v.example) for v in report.violations)


def test_validation_and_scoring_on_a_cluster_equal_one_process(
    cluster: str, postgres_url: str, tmp_path: Path
) -> None:
    """Re-validation and batch scoring of a 3-part clean table on 2 worker processes equal
    the local run's (and validation equals the whole table validated at once)."""
    _flights(tmp_path / "data")
    project = Project.init(tmp_path / "data", target="delayed", directory=tmp_path / "p",
                           name="flights", training=TRAINING)
    config = yaml.safe_load(project.file.read_text())
    config["storage"]["catalog_url"] = postgres_url
    project.file.write_text(yaml.safe_dump(config, sort_keys=False))

    with Project(project.file) as project:
        project.run()
        _stricter(project.root / "contracts" / "data.yaml")
        parts = project.lake.parts("clean/data")
        assert len(parts) == 3

        local = project.validate()
        on_cluster = project.validate(cluster=cluster)

        whole = validate(project.lake.read("clean/data"), Contract.load(
            project.root / "contracts" / "data.yaml"), drop_duplicates=False, batch_rules=False)
        local_scored = project.predict(None, tmp_path / "local.parquet", table="clean/data")
        cluster_scored = project.predict(None, tmp_path / "cluster.parquet",
                                         table="clean_data", cluster=cluster)
        exported = project.lake.read("clean/data").drop(PROVENANCE_COLUMNS, strict=False)
        exported.write_parquet(tmp_path / "clean.parquet")
        file_scored = project.predict(tmp_path / "clean.parquet", tmp_path / "file.parquet")
        logged = project.lake.read("predictions/flights")
        events = project.catalog.events(kind="validate")

    assert (on_cluster.cluster, local.cluster) == (cluster, "local")
    assert on_cluster.parts == local.parts == 3
    for report in (on_cluster.report, local.report):
        assert report.rows_in == whole.report.rows_in == sum(p.rows for p in parts)
        assert (report.rows_accepted, report.rows_quarantined, report.warned_rows) == (
            whole.report.rows_accepted, whole.report.rows_quarantined, whole.report.warned_rows)
        assert _violations(report) == _violations(whole.report)
    rules = {(v.column, v.rule, v.severity) for v in whole.report.violations}
    assert {("dep_delay", "max", "error"), ("carrier", "allowed", "error"),
            ("distance", "max", "warn")} <= rules
    assert whole.report.rows_quarantined > 100 and whole.report.warned_rows > 100
    assert_frame_equal(on_cluster.quarantined, whole.quarantined)
    assert_frame_equal(local.quarantined, whole.quarantined)
    assert [e["payload"]["cluster"] for e in events] == [cluster, "local"]  # newest first

    by_cluster = pl.read_parquet(cluster_scored)
    assert_frame_equal(by_cluster, pl.read_parquet(local_scored))
    assert by_cluster.height == sum(p.rows for p in parts)
    assert by_cluster["_prediction"].null_count() == 0
    assert_frame_equal(by_cluster.drop(PROVENANCE_COLUMNS, strict=False),
                       pl.read_parquet(file_scored))

    # each table scoring logged its rows once, by table position, with the same outputs
    runs = sorted(logged.partition_by("_request_id"), key=lambda r: r["_predicted_at"].min())
    assert len(runs) == 3  # the local, the cluster and the file scoring, in that order
    local_log, cluster_log = (r.sort("_record") for r in runs[:2])
    assert local_log["_record"].to_list() == list(range(by_cluster.height))
    assert_frame_equal(local_log.select("_record", "_prediction", "_score"),
                       cluster_log.select("_record", "_prediction", "_score"))



# ---- the profile by parts, and workers killed mid-stage -------------------------------------


class _KillAtPart(WorkerPlugin):
    """A worker plugin killing its worker's process (``os.kill`` of its own pid, SIGKILL)
    when the worker starts on a table part: every time, or once in the whole cluster when
    ``marker`` is a file path (the first worker to create the file dies)."""

    name = "loopml-test-kill-at-part"
    idempotent = False

    def __init__(self, marker: str | None) -> None:
        self.marker = marker

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        import signal

        if finish != "executing" or not str(key).startswith("loopml-part-"):
            return
        if self.marker is not None:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def _killing(address: str, marker: Path | None):
    """Workers die at parts while the block runs. Nothing here waits for the nannies to
    start the killed workers again: the other worker carries on alone."""
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        client.register_plugin(_KillAtPart(None if marker is None else str(marker)))
        try:
            yield
        finally:
            client.unregister_worker_plugin(_KillAtPart.name)


@contextmanager
def _fresh_cluster():
    """Two new worker processes for the kills of one test: the second death of a part's
    worker fails the part (allowed-failures 1), so no outcome waits for the nannies to start
    killed workers again."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
            env=WORKER_ENV, silence_logs=50) as local:
        yield local.scheduler_address


def _same_profile(a, b) -> None:
    """Exact statistics equal; moments up to float rounding (sketches merge alike)."""
    assert (a.rows, a.sampled_rows, a.sampling) == (b.rows, b.sampled_rows, b.sampling)
    assert a.target_distribution == b.target_distribution
    assert a.duplicates == b.duplicates and a.missing == b.missing
    for x, y in zip(a.columns, b.columns, strict=True):
        assert (x.name, x.kind, x.count, x.nulls, x.distinct) == (
            y.name, y.kind, y.count, y.nulls, y.distinct)
        assert (x.histogram, x.top_values, x.warnings) == (y.histogram, y.top_values,
                                                           y.warnings), x.name
        assert x.stats.keys() == y.stats.keys()
        for key, value in x.stats.items():
            assert y.stats[key] == pytest.approx(value, rel=1e-12, abs=1e-12), (x.name, key)
        assert x.target_relation == y.target_relation and x.association == y.association


def _project(folder: Path, postgres_url: str) -> Project:
    _flights(folder / "data")
    project = Project.init(folder / "data", target="delayed", directory=folder / "p",
                           name="flights", training=TRAINING)
    config = yaml.safe_load(project.file.read_text())
    config["storage"]["catalog_url"] = postgres_url
    project.file.write_text(yaml.safe_dump(config, sort_keys=False))
    return Project(project.file)


def test_profile_on_a_cluster_equals_one_process_also_with_a_killed_worker(
    cluster: str, postgres_url: str, tmp_path: Path
) -> None:
    """The profile computed part by part on 2 worker processes equals the local one and
    counts every row, also when a worker's process is killed while it works on a part."""
    from loopml.pipeline._run import clean_profile

    with _project(tmp_path, postgres_url) as project:
        project.ingest()
        assert len(project.lake.parts("clean/data")) == 3
        whole = project.lake.read("clean/data")
        local = clean_profile(project.context)
        on_cluster = clean_profile(project.compute_context(cluster))
        report = project.profile(output=tmp_path / "profile.html", cluster=cluster)
        with _fresh_cluster() as fresh, _killing(fresh, tmp_path / "killed"):
            killed = clean_profile(project.compute_context(fresh))
        assert (tmp_path / "killed").exists()  # a worker died mid-stage

    assert local.rows == on_cluster.rows == whole.height > 5000  # 6,000 less the quarantine
    assert {c.count + c.nulls for c in on_cluster.columns} == {whole.height}
    assert len(on_cluster.columns) == 8
    delay = next(c for c in on_cluster.columns if c.name == "dep_delay")
    assert delay.count == whole["dep_delay"].count()
    assert delay.stats["mean"] == pytest.approx(whole["dep_delay"].mean(), rel=1e-12)
    assert delay.stats["median"] == pytest.approx(whole["dep_delay"].median())  # exact here
    _same_profile(local, on_cluster)
    _same_profile(local, killed)
    assert report.exists()


def test_a_killed_worker_costs_a_retry_and_a_worker_killed_every_time_an_error(
    postgres_url: str, tmp_path: Path
) -> None:
    """A worker killed mid-stage costs a retry, not a different result, for validation and
    scoring; workers killed at every try end the stage with a ClusterError naming the part
    and the worker, and nothing is written."""
    from loopml.core.errors import ClusterError

    with _project(tmp_path, postgres_url) as project:
        project.run()
        local_valid = project.validate()
        local_scored = project.predict(None, tmp_path / "local.parquet", table="clean/data")
        with _fresh_cluster() as fresh:  # tasks are new keys in each stage: one cluster
            with _killing(fresh, tmp_path / "killed-validate"):
                killed_valid = project.validate(cluster=fresh)
            with _killing(fresh, tmp_path / "killed-score"):
                killed_scored = project.predict(None, tmp_path / "killed.parquet",
                                                table="clean/data", cluster=fresh)
            for stage in ("validate", "score"):  # a worker died in each stage
                assert (tmp_path / f"killed-{stage}").exists()

        logged_before = project.lake.ref("predictions/flights").version
        # two live workers again: with workers the nannies are still starting after the
        # kills above, a loaded machine left the part waiting for a worker (a 600 s hang)
        with _fresh_cluster() as fresh, _killing(fresh, None), pytest.raises(
                ClusterError) as failed:
            project.predict(None, tmp_path / "never.parquet", table="clean/data",
                            cluster=fresh)
        logged_after = project.lake.ref("predictions/flights").version

    assert killed_valid.report.rows_in == local_valid.report.rows_in
    assert _violations(killed_valid.report) == _violations(local_valid.report)
    assert_frame_equal(killed_valid.quarantined, local_valid.quarantined)
    assert_frame_equal(pl.read_parquet(killed_scored), pl.read_parquet(local_scored))

    message = str(failed.value)
    assert "clean/data@v" in message and "part " in message and "tcp://" in message
    assert logged_after == logged_before  # the failed scoring logged nothing
    assert not (tmp_path / "never.parquet").exists()
