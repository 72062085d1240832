"""Ingesting a PostgreSQL table whose server ends the reading connection between chunks: the
chunks committed before stay, the ingest ends in one clear SourceError, and the next ingest
takes the rest, every row exactly once in the clean table."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopml.core.errors import ConfigError, SourceError
from loopml.lake import table_name
from loopml.pipeline import Project

PG_URL = os.environ.get("LOOPML_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def reader_table() -> Iterator[tuple[sa.Engine, str, str]]:
    """A table of 2,000 rows with ties at the watermark, and a role that reads it (so its
    connection can be found and ended)."""
    engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                              poolclass=sa.pool.NullPool)
    name = f"loopml_t_{uuid.uuid4().hex[:10]}"
    role = f"loopml_r_{uuid.uuid4().hex[:8]}"
    try:
        with engine.begin() as c:
            c.exec_driver_sql(
                f"CREATE TABLE {name} AS SELECT g AS id, g / 5 AS wm, g * 0.5 AS x, "
                "(g %% 2 = 0) AS y FROM generate_series(1, 2000) g")
            c.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
            c.exec_driver_sql(f"GRANT SELECT ON {name} TO {role}")
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}: {exc.orig}")
    yield engine, name, role
    with engine.begin() as c:
        c.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        c.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
    engine.dispose()


class KillAfterFirstChunk:
    """A reporter that ends the reader's connection once the first chunk is committed."""

    def __init__(self, engine: sa.Engine, role: str):
        self.engine, self.role, self.done = engine, role, False

    def start(self, step: str, total: float | None = None) -> None:
        pass

    def advance(self, step: str, amount: float = 1.0, *, note: str = "") -> None:
        if step == "ingest" and not self.done:
            self.done = True
            with self.engine.begin() as c:
                ended = c.exec_driver_sql(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    f"WHERE usename = '{self.role}'").scalar()
            assert ended == 1

    def finish(self, step: str, *, note: str = "") -> None:
        pass


@pytest.mark.services
def test_a_database_gone_mid_ingest_keeps_the_committed_chunks_and_resumes(
    tmp_path: Path, reader_table: tuple[sa.Engine, str, str]
) -> None:
    engine, name, role = reader_table
    url = PG_URL.replace("postgres@", f"{role}@", 1)
    project = Project.init(url, table=name, target="y", watermark="wm", directory=tmp_path,
                           name="p")
    raw = project.config.model_dump(mode="json")
    raw["sources"][0]["chunk_rows"] = 300
    from loopml.core.config import ProjectConfig

    ProjectConfig.from_dict(raw).save(project.file)
    project = Project(project.file)
    clean = table_name("clean", name)
    with project:
        with pytest.raises(SourceError, match="broke while reading") as err:
            project.ingest(reporter=KillAfterFirstChunk(engine, role))
        assert "run the ingest again" in str(err.value)
        first = project.lake.read(clean)["id"].to_list()
        assert len(first) >= 300  # the chunks committed before the break stay
        results = project.ingest()
        assert results
        ids = project.lake.read(clean)["id"].to_list()
    assert sorted(ids) == list(range(1, 2001))


def test_init_from_a_sqlite_file_in_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``loopml init sqlite:///shop.db --dir proj``: the file is found from where the user
    typed it, the project keeps its path relative to the project, and ingests work."""
    monkeypatch.chdir(tmp_path)
    engine = sa.create_engine("sqlite:///shop.db")
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE orders (id INTEGER, total NUMERIC(8, 2), "
                          "placed DATETIME, churned BOOLEAN)")
        for i in range(60):
            c.exec_driver_sql(f"INSERT INTO orders VALUES ({i}, {i}.25, "
                              f"'2024-01-{1 + i // 10:02d} 10:00:00', {i % 2})")
    engine.dispose()
    with pytest.raises(ConfigError, match="table or query"):
        Project.init("sqlite:///shop.db", target="churned", directory="proj")
    project = Project.init("sqlite:///shop.db", table="orders", target="churned",
                           watermark="placed", directory="proj")
    src = project.config.source("orders")
    # outside the project: absolute, as a file source's path would be
    assert src.kind == "sql" and src.url == f"sqlite:///{(tmp_path / 'shop.db').resolve()}"
    types = {c.name: c.type for c in project.contract("orders").columns}
    assert types == {"id": "integer", "total": "float", "placed": "datetime",
                     "churned": "boolean"}
    with project:
        assert sum(r.report.rows_accepted for r in project.ingest()) == 60
        assert project.ingest() == []
