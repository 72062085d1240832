"""A lake on s3:// (moto's S3 server on 127.0.0.1): the same operations as on a folder."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import polars as pl
import pytest

from loopml.core.errors import LakeError
from loopml.core.objectstore import s3_filesystem
from loopml.lake import Lake

from .conftest import S3

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.services


def test_append_read_merge_and_time_travel_on_s3(s3: S3) -> None:
    """Appends, an upsert and reads by version and by time work on an object store."""
    lake = Lake(f"s3://{s3.bucket}/lake", storage_options=s3.options)
    assert lake.append("raw/t", pl.DataFrame({"k": [1, 2], "v": ["a", "b"]})).version == 0
    time.sleep(0.01)
    lake.merge("raw/t", pl.DataFrame({"k": [2, 3], "v": ["B", "c"]}), keys=["k"])
    assert lake.read("raw/t").sort("k")["v"].to_list() == ["a", "B", "c"]
    assert lake.read("raw/t", version=0).sort("k")["v"].to_list() == ["a", "b"]
    first = datetime.fromtimestamp(lake.history("raw/t")[-1]["timestamp"] / 1000, tz=UTC)
    assert lake.read("raw/t", as_of=first).height == 2
    lake.append("clean/p", pl.DataFrame({"p": ["x", "y"], "n": [1, 2]}), partition_by=["p"])
    assert lake.tables() == ["raw/t", "clean/p"]
    assert lake.partition_columns("clean/p") == ["p"]


def test_optimize_and_sql_on_s3(s3: S3) -> None:
    """Compaction, vacuum and SQL work on an object-store lake."""
    lake = Lake(f"s3://{s3.bucket}/lake", storage_options=s3.options)
    for x in range(3):
        lake.append("clean/t", pl.DataFrame({"x": [x]}))
    done = lake.optimize("clean/t", retention_hours=0)
    assert (done.files_removed, done.files_added, done.files_vacuumed) == (3, 1, 3)
    assert done.bytes_vacuumed > 0
    assert lake.sql("SELECT sum(x)::BIGINT AS s, count(*) AS n FROM clean_t").row(0) == (3, 3)


def test_a_missing_bucket_is_a_clear_error(s3: S3) -> None:
    """Listing or reading a lake in a bucket that does not exist is a LakeError."""
    lake = Lake("s3://no-such-bucket-here/lake", storage_options=s3.options)
    with pytest.raises(LakeError, match="does not exist"):
        lake.tables()
    with pytest.raises(LakeError):
        lake.read("raw/t")


def test_a_project_ingests_into_an_s3_lake_and_the_cli_reads_it(
    s3: S3, penguins_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file source and storage.lake_uri on s3://, with options from loopml.yaml (a secret as
    ${VAR}) and the endpoint from the environment: 'loopml ingest' reads the object into the
    lake there, once; 'loopml lake' lists and queries it."""
    import yaml
    from typer.testing import CliRunner

    from loopml.cli import app
    from loopml.pipeline import Project

    folder = penguins_csv.parent
    monkeypatch.chdir(folder)
    project = Project.init(penguins_csv, target="species", directory=folder)
    for key in ("AWS_ENDPOINT_URL", "AWS_ALLOW_HTTP", "AWS_REGION"):
        monkeypatch.setenv(key, s3.options[key])
    monkeypatch.setenv("TEST_S3_SECRET", "testing")
    config = yaml.safe_load(project.file.read_text())
    store, _ = s3_filesystem(f"s3://{s3.bucket}", s3.options)
    with store.open_output_stream(f"{s3.bucket}/in/penguins.csv") as out:
        out.write(penguins_csv.read_bytes())
    config["sources"][0]["path"] = f"s3://{s3.bucket}/in/*.csv"
    config["sources"][0]["storage_options"] = {"AWS_ACCESS_KEY_ID": "testing",
                                               "AWS_SECRET_ACCESS_KEY": "${TEST_S3_SECRET}"}
    config["storage"] = {
        "lake_uri": f"s3://{s3.bucket}/lake",
        "storage_options": {"AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "${TEST_S3_SECRET}"},
    }
    project.file.write_text(yaml.safe_dump(config))
    assert Project.find(folder).lake.uri == f"s3://{s3.bucket}/lake"
    runner = CliRunner()
    ingested = runner.invoke(app, ["ingest"])
    assert ingested.exit_code == 0, ingested.output
    listed = runner.invoke(app, ["lake", "ls", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {t["table"]: t["rows"] for t in json.loads(listed.output)}
    assert rows == {"raw/penguins": 344, "clean/penguins": 344}
    query = runner.invoke(app, ["lake", "sql", "--json",
                                "SELECT count(*) AS n FROM clean_penguins WHERE sex = 'male'"])
    assert query.exit_code == 0, query.output
    assert json.loads(query.output)["rows"] == [{"n": 168}]
    files = runner.invoke(app, ["lake", "sql", "--json",
                                "SELECT DISTINCT _source_file AS f FROM raw_penguins"])
    assert json.loads(files.output)["rows"] == [{"f": f"s3://{s3.bucket}/in/penguins.csv"}]
    again = runner.invoke(app, ["ingest"])  # the object is unchanged: nothing new
    assert again.exit_code == 0, again.output
    listed = json.loads(runner.invoke(app, ["lake", "ls", "--json"]).output)
    assert {t["table"]: t["rows"] for t in listed} == rows
