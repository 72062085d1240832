"""A clean table larger than ``compute.sample_rows``: the run trains on a sample and its
bundle, evaluation, drift reference, lineage and reproduction say which; and a table scored
in many small batches gives what scoring it at once gives, the log appended batch by batch."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from loopml.core.bundle import load_bundle
from loopml.pipeline import Project
from loopml.pipeline._tables import score_table

pytestmark = pytest.mark.slow

TRAINING = {"learners": ["linear"], "time_budget_s": 10, "max_trials": 2, "cv_folds": 2,
            "deterministic": True}


def _project(penguins_csv: Path, tmp_path: Path, *, sample_rows: int | None) -> Project:
    """Penguins in two files (two ingested chunks: a clean table of two parts)."""
    frame = pl.read_csv(penguins_csv, null_values="NA")
    data = tmp_path / "data"
    data.mkdir()
    frame.head(200).write_csv(data / "a.csv")
    frame.tail(frame.height - 200).write_csv(data / "b.csv")
    project = Project.init(data, target="species", directory=tmp_path / "p", training=TRAINING,
                           name="scale")
    if sample_rows is not None:
        config = yaml.safe_load(project.file.read_text())
        config["compute"] = {**config.get("compute", {}), "sample_rows": sample_rows}
        project.file.write_text(yaml.safe_dump(config, sort_keys=False))
        project = Project(project.file)
    return project


def test_run_on_a_table_larger_than_sample_rows_records_the_sample(
    penguins_csv: Path, tmp_path: Path
) -> None:
    """With compute.sample_rows 150 of ~340 clean rows: the run trains on 150 rows, and the
    bundle, its evaluation and reference, the run result and the lineage event say so;
    reproduce reads the same sample and rebuilds the same model."""
    with _project(penguins_csv, tmp_path, sample_rows=150) as project:
        result = project.run()
        clean = project.lake.read("clean/data")
        mv = result.model_version
        bundle = load_bundle(project.catalog.fetch(mv.name, mv.version))
        events = project.catalog.events(kind="trained_on", subject=mv.ref)
        again = project.reproduce(mv.ref)

    sampled = result.sampled
    assert sampled is not None and sampled.method == "row_hash"
    assert (sampled.table, sampled.rows_in_table, sampled.rows_read) == (
        "clean/data", clean.height, 150)
    assert sum(result.split_sizes.values()) <= 150
    assert bundle.trained_on == sampled
    assert bundle.evaluation is not None and bundle.evaluation.sampled == sampled
    assert bundle.reference.sampled == sampled
    assert events and events[0]["payload"]["rows_read"] == 150
    assert again.identical and again.rows == result.split_sizes["test"]


def test_small_table_is_trained_on_whole(penguins_csv: Path, tmp_path: Path) -> None:
    """Below compute.sample_rows the sample is the whole clean table; scoring that table in
    batches of 37 rows writes the same rows and outputs as scoring it at once, and logs
    every row once per scoring (one commit of every batch's file, one request id)."""
    with _project(penguins_csv, tmp_path, sample_rows=None) as project:
        result = project.run()
        clean = project.lake.read("clean/data")
        ctx = project.context
        parts = project.lake.parts("clean/data")
        at_once = score_table(ctx, "clean/data", tmp_path / "once.parquet")
        batched = score_table(ctx, "clean_data", tmp_path / "batched.parquet", batch_rows=37)
        as_csv = score_table(ctx, "clean/data", tmp_path / "batched.csv", batch_rows=37)
        logged = project.lake.read("predictions/scale")
        history = project.lake.history("predictions/scale")
        events = project.catalog.events(kind="predict")

    assert result.sampled is not None and result.sampled.whole
    assert result.sampled.rows_read == clean.height
    assert len(parts) == 2
    once = pl.read_parquet(at_once)
    assert_frame_equal(pl.read_parquet(batched), once)
    assert once.height == clean.height and once["_prediction"].null_count() == 0
    assert_frame_equal(pl.read_csv(as_csv).select("_prediction", "_score"),
                       once.select("_prediction", "_score"), check_dtypes=False)
    assert not list(tmp_path.glob(".*.tmp"))
    runs = {k[0]: g.sort("_record") for k, g in logged.group_by("_request_id")}
    assert len(runs) == 3
    for run in runs.values():
        assert run["_record"].to_list() == list(range(clean.height))
        assert_frame_equal(run.select("_prediction", "_score"),
                           once.select("_prediction", "_score"), check_dtypes=False)
    # each scoring is one commit of the log, however many files its batches filled
    assert [e["payload"]["log_commits"] for e in events] == [1, 1, 1]
    added = [c["operationMetrics"]["num_added_files"] for c in history[:3]]  # newest first
    assert added == [2, 2, 1]
