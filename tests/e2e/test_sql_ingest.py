"""A project on a PostgreSQL table, as a user runs it: ``loopml init URL --table``, ingests
that take only new rows (ties at the watermark included), and the password, given through the
environment, found nowhere: not in the lake, the catalog, the project files or the output."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.services

PG_URL = os.environ.get("LOOPML_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SECRET = "pw-" + uuid.uuid4().hex  # trusted locally, so any password connects


@pytest.fixture
def table() -> Iterator[tuple[sa.Engine, str]]:
    url = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    name = f"loopml_e2e_{uuid.uuid4().hex[:10]}"
    try:
        with engine.begin() as c:
            c.exec_driver_sql(
                f"CREATE TABLE {name} AS SELECT g AS id, "
                "timestamptz '2024-01-01 00:00+00' + (g / 4) * interval '1 hour' AS updated, "
                "(g * 7) % 10 < 4 AS churned, (g * 1.25)::numeric(10, 2) AS spend, "
                "CASE WHEN g % 3 = 0 THEN 'pro' ELSE 'free' END AS plan "
                "FROM generate_series(1, 400) g".replace("%", "%%"))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}: {exc.orig}")
    yield engine, name
    with engine.begin() as c:
        c.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    engine.dispose()


def _files_contain(folder: Path, text: bytes) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and text in p.read_bytes()]


def test_sql_project_ingests_incrementally_and_never_shows_the_password(
    cli, table: tuple[sa.Engine, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    engine, name = table
    monkeypatch.setenv("LOOPML_TEST_PG_PASSWORD", SECRET)
    url = PG_URL.replace("postgres@", "postgres:${LOOPML_TEST_PG_PASSWORD}@", 1)
    assert "${" in url
    outputs = []

    code, out = cli("init", url, "--table", name, "--target", "churned",
                    "--watermark", "updated")
    outputs.append(out)
    assert code == 0, out
    assert "kind: sql" in (tmp_path / "loopml.yaml").read_text()
    assert "sample of the first rows" in out

    code, out = cli("ingest", "--json")
    outputs.append(out)
    assert code == 0, out
    first = json.loads(out)["sources"][0]
    assert (first["rows_in"], first["accepted"]) == (400, 400)

    # a row tying the last watermark value, and a newer one
    with engine.begin() as c:
        c.exec_driver_sql(
            f"INSERT INTO {name} SELECT 401, max(updated), true, 1.00, 'pro' FROM {name}")
        c.exec_driver_sql(f"INSERT INTO {name} SELECT 402, max(updated) + interval '1 hour', "
                          f"false, 2.00, 'free' FROM {name}")
    code, out = cli("ingest", "--json")
    outputs.append(out)
    assert code == 0, out
    assert json.loads(out)["sources"][0]["rows_in"] == 2

    code, out = cli("ingest", "--json")  # nothing new
    outputs.append(out)
    assert code == 0, out
    assert sum(s["rows_in"] for s in json.loads(out)["sources"]) == 0

    code, out = cli("sources")
    outputs.append(out)
    assert code == 0 and "watermark=" in out

    from loopml.lake import table_name
    from loopml.pipeline import Project

    with Project(tmp_path / "loopml.yaml") as project:
        clean = project.lake.read(table_name("clean", name))
    assert sorted(clean["id"].to_list()) == list(range(1, 403))  # each row once
    assert clean["spend"].dtype.is_float()

    # an unreachable server: one clear error, no traceback, no password
    text = (tmp_path / "loopml.yaml").read_text().replace(":5432/", ":1/")
    (tmp_path / "loopml.yaml").write_text(text)
    code, out = cli("ingest")
    outputs.append(out)
    assert code != 0 and "Cannot connect to" in out and "Traceback" not in out

    for o in outputs:
        assert SECRET not in o
    assert _files_contain(tmp_path, SECRET.encode()) == []
    assert any(name in o for o in outputs)  # the table is named where it helps
