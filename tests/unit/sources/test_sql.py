"""SQL sources against the local PostgreSQL and MariaDB servers and SQLite files: full reads,
types, chunking, incremental reads by a watermark with ties, credentials kept out of sight,
and the faults a user meets (each one clear SourceError)."""

from __future__ import annotations

import os
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from loopml.core.config import SqlSource
from loopml.core.errors import SourceError
from loopml.sources import read_chunks

pytestmark = pytest.mark.services

PG_URL = os.environ.get("LOOPML_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("LOOPML_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
BACKENDS = ["postgresql", "mariadb", "sqlite"]


def _driver_url(url: str) -> str:
    for plain, driver in (("postgresql://", "postgresql+psycopg://"),
                          ("mysql://", "mysql+pymysql://"), ("mariadb://", "mariadb+pymysql://")):
        if url.startswith(plain):
            return driver + url[len(plain):]
    return url


def _reachable(url: str) -> str | None:
    try:
        engine = sa.create_engine(_driver_url(url), poolclass=sa.pool.NullPool)
        with engine.connect():
            pass
        return None
    except sa.exc.SQLAlchemyError as exc:
        return f"{url.split('@')[-1]} unreachable: {str(exc).splitlines()[0]}"


class Db:
    """One backend: the URL a source uses, an engine to set up tables, unique table names."""

    def __init__(self, backend: str, url: str):
        self.backend, self.url = backend, url
        self.engine = sa.create_engine(_driver_url(url), poolclass=sa.pool.NullPool)
        self.tables: list[str] = []

    def name(self) -> str:
        table = f"loopml_t_{uuid.uuid4().hex[:10]}"
        self.tables.append(table)
        return table

    def ts(self, hour: int) -> datetime:
        """A timestamp; aware (UTC) where the column keeps a time zone (PostgreSQL)."""
        t = datetime(2024, 1, 1) + timedelta(hours=hour)
        return t.replace(tzinfo=UTC) if self.backend == "postgresql" else t

    def create(self, **extra: Any) -> tuple[str, sa.Table]:
        name = self.name()
        table = sa.Table(
            name, sa.MetaData(),
            sa.Column("id", sa.Integer),
            sa.Column("wm", sa.DateTime(timezone=True)),
            sa.Column("amount", sa.Numeric(10, 2)),
            sa.Column("label", sa.String(40)),
            sa.Column("flag", sa.Boolean),
            sa.Column("day", sa.Date),
        )
        table.create(self.engine)
        return name, table

    def insert(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            with self.engine.begin() as c:
                c.execute(table.insert(), rows)

    def drop(self) -> None:
        with self.engine.begin() as c:
            for t in self.tables:
                c.exec_driver_sql(f"DROP TABLE IF EXISTS {t}")
        self.engine.dispose()


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    backend = request.param
    if backend == "sqlite":
        found = Db(backend, f"sqlite:///{tmp_path / 'test.db'}")
        yield found
        found.drop()
    else:
        yield from _server(backend)


def _server(backend: str) -> Iterator[Db]:
    url = PG_URL if backend == "postgresql" else MYSQL_URL
    why = _reachable(url)
    if why:
        pytest.skip(why)
    found = Db(backend, url)
    yield found
    found.drop()


@pytest.fixture
def pg() -> Iterator[Db]:
    yield from _server("postgresql")


@pytest.fixture
def maria() -> Iterator[Db]:
    yield from _server("mariadb")


def source(url: str, **kw: Any) -> SqlSource:
    return SqlSource(name="s", kind="sql", url=url, **kw)


def rows_of(db: Db, ids: range | list[int], *, hour: Any = None) -> list[dict[str, Any]]:
    """Rows with ``id``; the watermark hour is ``hour(id)`` (default: id // 3, ties of 3)."""
    hour = hour or (lambda i: i // 3)
    return [{"id": i, "wm": db.ts(hour(i)), "amount": Decimal(i) / 4, "label": f"r{i}",
             "flag": i % 2 == 0, "day": date(2024, 1, 1) + timedelta(days=i)} for i in ids]


def take(config: SqlSource, cursor: dict[str, Any] | None, *, chunks: int | None = None,
         base_dir: Path | str = ".") -> tuple[list[pl.DataFrame], dict[str, Any] | None]:
    """An ingest: the chunks it commits (all, or the first ``chunks`` before a crash) and the
    cursor it stores."""
    frames = []
    for i, chunk in enumerate(read_chunks(config, cursor=cursor, base_dir=base_dir)):
        if chunks is not None and i >= chunks:
            break
        frames.append(chunk.frame)
        cursor = chunk.cursor
    return frames, cursor


def ids(frames: list[pl.DataFrame]) -> list[int]:
    return [i for f in frames for i in f["id"].to_list()]


# ---- full reads, types, chunking ---------------------------------------------------------


def test_full_read_with_native_types_and_provenance(db: Db) -> None:
    name, table = db.create()
    db.insert(table, rows_of(db, range(1, 11)))
    db.insert(table, [{"id": 11, "wm": db.ts(1), "amount": None, "label": None, "flag": None,
                       "day": None}])
    frames, cursor = take(source(db.url, table=name), None)
    frame = pl.concat(frames)
    assert sorted(frame["id"].to_list()) == list(range(1, 12))
    assert frame["_source_row"].to_list() == list(range(1, 12))
    assert set(frame["_source_file"]) == {f"{db.url}#{name}"}
    schema = frame.schema
    assert schema["id"] == pl.Int64
    assert schema["amount"] == pl.Decimal(10, 2)
    assert schema["label"] == pl.String
    assert schema["day"] == pl.Date
    tz = "UTC" if db.backend == "postgresql" else None  # MariaDB/SQLite keep no zone
    assert schema["wm"] == pl.Datetime("us", tz)
    # MariaDB's BOOLEAN is TINYINT(1): it comes back as 0/1
    assert schema["flag"] == (pl.Int64 if db.backend == "mariadb" else pl.Boolean)
    row = frame.filter(pl.col("id") == 6).row(0, named=True)
    assert row["amount"] == Decimal("1.50")
    assert row["day"] == date(2024, 1, 7)
    assert row["wm"].replace(tzinfo=None) == datetime(2024, 1, 1, 2)
    assert frame.filter(pl.col("id") == 11)["amount"].to_list() == [None]
    assert cursor is not None and cursor["rows"] == 11


def test_contract_inference_of_sql_types(pg: Db) -> None:
    """Decimals infer as numbers, timestamps with a zone as datetimes, dates as dates."""
    from loopml.quality import infer_contract, validate

    name, table = pg.create()
    pg.insert(table, rows_of(pg, range(1, 40)))
    frame = pl.concat(take(source(pg.url, table=name), None)[0])
    contract = infer_contract(frame, source="s")
    types = {c.name: c.type for c in contract.columns}
    assert types["amount"] == "float"
    assert types["wm"] == "datetime"
    assert types["day"] == "date"
    assert types["flag"] == "boolean"
    checked = validate(frame, contract)
    assert checked.report.rows_quarantined == 0
    assert checked.clean["amount"].dtype == pl.Float64


def test_postgresql_specific_types(pg: Db) -> None:
    """Unbounded numerics become floats, times text, intervals seconds, JSON text."""
    name = pg.name()
    with pg.engine.begin() as c:
        c.exec_driver_sql(f"CREATE TABLE {name} (n numeric, t time, iv interval, j jsonb, "
                          "u uuid, r real, b bytea)")
        c.exec_driver_sql(f"INSERT INTO {name} VALUES (1.5, '12:30', interval '90 seconds', "
                          "'{\"a\": [1, 2]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 0.5, "
                          "'\\x0102')")
    frame = take(source(pg.url, table=name), None)[0][0]
    assert frame.row(0, named=True) | {"_source_file": None} == {
        "n": 1.5, "t": "12:30:00", "iv": 90.0, "j": '{"a": [1, 2]}',
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "r": 0.5, "b": b"\x01\x02",
        "_source_file": None, "_source_row": 1,
    }


def test_chunks_hold_at_most_chunk_rows(db: Db) -> None:
    name, table = db.create()
    db.insert(table, rows_of(db, range(1, 11)))
    frames, _ = take(source(db.url, table=name, chunk_rows=3), None)
    assert [f.height for f in frames] == [3, 3, 3, 1]
    assert ids(frames) == sorted(ids(frames))  # without a watermark: the table's order


def test_query_source_and_its_types(db: Db) -> None:
    name, table = db.create()
    db.insert(table, rows_of(db, range(1, 11)))
    config = source(db.url, query=f"SELECT id, amount, label FROM {name} WHERE id > 4;",
                    chunk_rows=4, watermark="id")
    frames, cursor = take(config, None)
    assert ids(frames) == [5, 6, 7, 8, 9, 10]
    assert frames[0].schema["id"] == pl.Int64
    assert frames[0]["_source_file"][0] == f"{db.url}#query"
    db.insert(table, rows_of(db, [11, 12]))
    again, _ = take(config, cursor)
    assert ids(again) == [11, 12]


def test_relative_sqlite_path_is_relative_to_the_project(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE orders (id INTEGER, total REAL)")
        c.exec_driver_sql("INSERT INTO orders VALUES (1, 9.5), (2, 3.25)")
    engine.dispose()
    frames, _ = take(source("sqlite:///shop.db", table="orders"), None, base_dir=tmp_path)
    assert frames[0]["total"].to_list() == [9.5, 3.25]


# ---- incremental by watermark ------------------------------------------------------------


def test_watermark_takes_only_newer_rows_and_ties_exactly_once(db: Db) -> None:
    """Ties at the boundary, chunk boundaries inside a run of ties, rows inserted between
    ingests with the last watermark value: every row once."""
    name, table = db.create()
    config = source(db.url, table=name, watermark="wm", chunk_rows=2)
    db.insert(table, rows_of(db, range(0, 8)))  # hours 0,0,0,1,1,1,2,2 (ties of three)
    first, cursor = take(config, None)
    assert [f.height for f in first] == [2, 2, 2, 2]  # chunk ends fall inside the ties
    assert sorted(ids(first)) == list(range(0, 8))
    assert cursor is not None
    assert cursor["watermark"].replace(" ", "T").startswith("2024-01-01T02:00:00")
    # as the database stores it: SQLite keeps text
    assert cursor["type"] == ("str" if db.backend == "sqlite" else "datetime")
    assert sum(cursor["ties"].values()) == 2  # the two rows at hour 2

    assert take(config, cursor)[0] == []  # nothing new: nothing read twice

    # a late row with the last value (hour 2), and newer rows
    db.insert(table, rows_of(db, [8], hour=lambda i: 2) + rows_of(db, [9, 10, 11]))
    second, cursor = take(config, cursor)
    assert sorted(ids(second)) == [8, 9, 10, 11]
    assert [f["_source_row"].to_list() for f in second][0][0] == 9  # numbering goes on


def test_identical_rows_at_the_boundary_are_both_kept(db: Db) -> None:
    name, table = db.create()
    config = source(db.url, table=name, watermark="wm", chunk_rows=10)
    twin = rows_of(db, [5], hour=lambda i: 1)
    db.insert(table, rows_of(db, [1, 2], hour=lambda i: 0) + twin)
    first, cursor = take(config, None)
    db.insert(table, twin)  # the very same row again, at the last watermark value
    second, _ = take(config, cursor)
    assert ids(first) + ids(second) == [1, 2, 5, 5]


def test_a_crash_between_chunks_resumes_exactly(db: Db) -> None:
    """An ingest that commits k chunks and dies: the next one takes the rest, none twice."""
    name, table = db.create()
    config = source(db.url, table=name, watermark="wm", chunk_rows=2)
    db.insert(table, rows_of(db, range(0, 9)))
    got: list[int] = []
    cursor = None
    for k in (1, 2, 0, 1):  # crash after k chunks (0: before the first)
        frames, cursor = take(config, cursor, chunks=k)
        got += ids(frames)
    frames, cursor = take(config, cursor)
    got += ids(frames)
    assert sorted(got) == list(range(0, 9))


def test_random_ingests_crashes_and_late_ties_never_lose_or_double(db: Db) -> None:
    """Rows arrive in bursts (often with the newest watermark value), ingests crash after a
    random number of chunks; the rows taken overall are every row exactly once."""
    name, table = db.create()
    rng = random.Random(7)
    config = source(db.url, table=name, watermark="wm", chunk_rows=3)
    next_id, newest, cursor = 0, 0, None
    taken: Counter[int] = Counter()
    for _ in range(12):
        burst = []
        for _ in range(rng.randint(0, 7)):
            newest += rng.choice([0, 0, 1])  # mostly ties with the newest value
            burst.append(next_id)
            next_id += 1
        db.insert(table, rows_of(db, burst, hour=lambda i, h=newest: h))
        frames, cursor = take(config, cursor, chunks=rng.choice([None, 0, 1, 2]))
        taken.update(ids(frames))
    frames, cursor = take(config, cursor)
    taken.update(ids(frames))
    assert taken == Counter(range(next_id))


def test_null_watermarks_are_read_on_the_first_ingest(db: Db) -> None:
    name, table = db.create()
    config = source(db.url, table=name, watermark="wm", chunk_rows=2)
    db.insert(table, rows_of(db, [1, 2, 3]) + [
        {"id": i, "wm": None, "amount": None, "label": None, "flag": None, "day": None}
        for i in (90, 91, 92)])
    frames, cursor = take(config, None, chunks=1)  # a crash inside the NULL rows
    rest, cursor = take(config, cursor)
    assert sorted(ids(frames) + ids(rest)) == [1, 2, 3, 90, 91, 92]


def test_sqlite_text_timestamps_compare_as_stored(tmp_path: Path) -> None:
    """SQLite keeps timestamps as text: the watermark is compared as the database stores it,
    so ties written without microseconds are not lost."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE w (id INTEGER, wm DATETIME)")
        c.exec_driver_sql("INSERT INTO w VALUES (1, '2024-01-01 00:00:00'), "
                          "(2, '2024-01-01 01:00:00')")
    config = source(f"sqlite:///{tmp_path / 'w.db'}", table="w", watermark="wm")
    frames, cursor = take(config, None)
    with engine.begin() as c:
        c.exec_driver_sql("INSERT INTO w VALUES (3, '2024-01-01 01:00:00')")
    again, _ = take(config, cursor)
    engine.dispose()
    assert ids(frames) == [1, 2] and ids(again) == [3]
    assert frames[0].schema["wm"] == pl.Datetime("us")


def test_without_watermark_an_unchanged_table_is_not_read_again(db: Db) -> None:
    name, table = db.create()
    config = source(db.url, table=name, chunk_rows=4)
    db.insert(table, rows_of(db, range(1, 6)))
    frames, cursor = take(config, None)
    assert ids(frames) == [1, 2, 3, 4, 5]
    assert take(config, cursor)[0] == []
    db.insert(table, rows_of(db, [6]))
    again, _ = take(config, cursor)
    assert sorted(ids(again)) == [1, 2, 3, 4, 5, 6]  # a snapshot: the whole table again


# ---- credentials -------------------------------------------------------------------------


SECRET = "Sup3r-s3cret-pw"


def test_password_from_the_environment_never_shows(pg: Db, monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:
    """PostgreSQL here trusts local users, so any password connects: the reader expands it
    and nothing it returns or raises contains it."""
    monkeypatch.setenv("LOOPML_TEST_SQL_PW", SECRET)
    name, table = pg.create()
    pg.insert(table, rows_of(pg, range(3)))
    url = PG_URL.replace("postgres@", "postgres:${LOOPML_TEST_SQL_PW}@", 1)
    assert "${LOOPML_TEST_SQL_PW}" in url
    chunks = list(read_chunks(source(url, table=name, watermark="wm")))
    assert sum(c.frame.height for c in chunks) == 3
    for c in chunks:
        assert SECRET not in repr(c.cursor) + repr(c.frame.rows())
        assert set(c.frame["_source_file"]) == {
            url.replace("${LOOPML_TEST_SQL_PW}", "***") + f"#{name}"}
    down = url.replace(":5432/", ":1/")  # nothing listens on port 1
    with pytest.raises(SourceError) as err:
        list(read_chunks(source(down, table=name)))
    assert SECRET not in str(err.value) and "***" in str(err.value)


def test_mariadb_user_with_a_password(maria: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real password check: the right one from the environment connects, a wrong one is a
    clear credentials error, and neither appears anywhere."""
    name, table = maria.create()
    maria.insert(table, rows_of(maria, range(4)))
    user = f"loopml_{uuid.uuid4().hex[:8]}"
    with maria.engine.begin() as c:
        _mariadb_user(c, user, SECRET)
    try:
        url = MYSQL_URL.replace("root@", f"{user}:${{LOOPML_TEST_SQL_PW}}@", 1)
        monkeypatch.setenv("LOOPML_TEST_SQL_PW", SECRET)
        frames, _ = take(source(url, table=name), None)
        assert ids(frames) == [0, 1, 2, 3]
        assert SECRET not in frames[0]["_source_file"][0]
        monkeypatch.setenv("LOOPML_TEST_SQL_PW", "wrong-" + SECRET)
        with pytest.raises(SourceError) as err:
            take(source(url, table=name), None)
        text = str(err.value)
        assert "Access denied" in text and "password" in text.lower()
        assert SECRET not in text and "Hint:" in text
    finally:
        with maria.engine.begin() as c:
            _drop_mariadb_user(c, user)


def _mariadb_user(c: sa.Connection, user: str, password: str) -> None:
    for host in ("%%", "localhost"):  # '%' doubled: PyMySQL formats the statement
        c.exec_driver_sql(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")
        c.exec_driver_sql(f"GRANT SELECT ON test.* TO '{user}'@'{host}'")


def _drop_mariadb_user(c: sa.Connection, user: str) -> None:
    for host in ("%%", "localhost"):
        c.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'{host}'")


def test_a_missing_environment_variable_is_named() -> None:
    with pytest.raises(SourceError, match="LOOPML_TEST_UNSET_VAR.*not set"):
        list(read_chunks(source("postgresql://u:${LOOPML_TEST_UNSET_VAR}@127.0.0.1/test",
                                table="t")))


# ---- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "postgresql://postgres@127.0.0.1:1/test",
    "mysql://root@127.0.0.1:1/test",
])
def test_unreachable_server(url: str) -> None:
    with pytest.raises(SourceError) as err:
        list(read_chunks(source(url, table="t")))
    assert "Cannot connect to" in str(err.value) and "running and reachable" in str(err.value)


def test_missing_table_column_and_bad_query(db: Db) -> None:
    name, table = db.create()
    db.insert(table, rows_of(db, range(2)))
    with pytest.raises(SourceError, match=r"Unknown table 'nope_x'"):
        list(read_chunks(source(db.url, table="nope_x")))
    with pytest.raises(SourceError, match=r"Unknown watermark column 'wmm'. Did you mean 'wm'"):
        list(read_chunks(source(db.url, table=name, watermark="wmm")))
    with pytest.raises(SourceError, match=r"Reading the query .* failed"):
        list(read_chunks(source(db.url, query="SELEC id FROM nowhere")))
    with pytest.raises(SourceError, match=r"Reading the query .* failed"):
        list(read_chunks(source(db.url, query=f"SELECT id FROM {name}", watermark="nope")))
    with pytest.raises(SourceError, match=r"Reading the query .* failed"):
        list(read_chunks(source(db.url, query=f"SELECT nocol FROM {name}")))


def test_missing_sqlite_file_and_unsupported_url(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        list(read_chunks(source("sqlite:///absent.db", table="t"), base_dir=tmp_path))
    assert not (tmp_path / "absent.db").exists()  # not created by trying
    with pytest.raises(SourceError, match="not supported"):
        list(read_chunks(source("oracle://u@h/db", table="t")))


def _kill_reader(db: Db, user: str) -> None:
    """End the connection of ``user`` (the reader's own user) from another connection."""
    with db.engine.begin() as c:
        if db.backend == "postgresql":
            n = c.exec_driver_sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE usename = '{user}'").scalar()
        else:
            found = [r[0] for r in c.exec_driver_sql(
                f"SELECT id FROM information_schema.processlist WHERE user = '{user}'")]
            for pid in found:
                c.exec_driver_sql(f"KILL {int(pid)}")
            n = len(found)
    assert n == 1, f"expected one reading connection, found {n}"


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_database_going_away_mid_read(backend: str, request: pytest.FixtureRequest) -> None:
    """The reading connection is killed between chunks: one clear SourceError after the
    chunks already yielded; the next read from their cursor takes the rest exactly once."""
    db: Db = request.getfixturevalue("pg" if backend == "postgresql" else "maria")
    name, table = db.create()
    total = 3000 if backend == "postgresql" else 20_000
    db.insert(table, rows_of(db, range(0, total), hour=lambda i: i // 7))
    user = f"loopml_{uuid.uuid4().hex[:8]}"
    with db.engine.begin() as c:  # the reader connects as its own user, to be found
        if backend == "postgresql":
            c.exec_driver_sql(f"CREATE ROLE {user} LOGIN")
            c.exec_driver_sql(f"GRANT SELECT ON {name} TO {user}")
        else:
            _mariadb_user(c, user, "pw")
    url = db.url.replace("postgres@", f"{user}@").replace("root@", f"{user}:pw@")
    config = source(url, table=name, watermark="wm", chunk_rows=100)
    if backend == "mariadb":  # rows fatter than the sockets buffer: the server is still sending
        config = source(url, query=f"SELECT {name}.*, REPEAT('x', 2000) AS pad FROM {name}",
                        watermark="wm", chunk_rows=100)
    got: list[int] = []
    cursor = None
    try:
        with pytest.raises(SourceError) as err:
            for i, chunk in enumerate(read_chunks(config)):
                got += chunk.frame["id"].to_list()
                cursor = chunk.cursor
                if i == 2:
                    _kill_reader(db, user)
        assert "broke while reading" in str(err.value)
        assert "run the ingest again" in str(err.value)
        assert len(got) >= 300
        rest, _ = take(config.model_copy(update={"chunk_rows": 50_000}), cursor)
        assert sorted(got + ids(rest)) == list(range(0, total))
    finally:
        with db.engine.begin() as c:
            if backend == "postgresql":
                c.exec_driver_sql(f"DROP OWNED BY {user}")
                c.exec_driver_sql(f"DROP ROLE IF EXISTS {user}")
            else:
                _drop_mariadb_user(c, user)


def test_reading_stays_bounded_in_memory(pg: Db) -> None:
    """A server-side cursor: the first chunk arrives while the rest stays on the server (the
    reader has not fetched more than a chunk ahead)."""
    name = pg.name()
    with pg.engine.begin() as c:
        c.exec_driver_sql(f"CREATE TABLE {name} AS SELECT g AS id, repeat('x', 100) AS pad "
                          "FROM generate_series(1, 200000) g")
    config = source(pg.url, table=name, chunk_rows=1000)
    it = read_chunks(config)
    try:
        first = next(it)
        assert first.frame.height == 1000
        with pg.engine.connect() as c:  # a server-side cursor fetches 1,000 rows at a time
            fetching = c.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' "
                "AND query LIKE 'FETCH FORWARD 1000 FROM%%'").scalar()
        assert fetching >= 1
    finally:
        it.close()  # type: ignore[attr-defined]


def test_reader_is_safe_to_abandon(pg: Db) -> None:
    """Closing the iterator early closes the connection (no idle transaction left behind)."""
    name, table = pg.create()
    pg.insert(table, rows_of(pg, range(50)))
    it = read_chunks(source(pg.url, table=name, chunk_rows=10))
    next(it)
    it.close()  # type: ignore[attr-defined]
    with pg.engine.connect() as c:
        left = c.exec_driver_sql(
            f"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%{name}%%' "
            "AND pid <> pg_backend_pid()").scalar()
    assert left == 0


@pytest.mark.parametrize("scheme", ["postgres", "mariadb"])
def test_plain_schemes_map_to_the_installed_drivers(scheme: str, request: pytest.FixtureRequest
                                                    ) -> None:
    """postgres:// and postgresql:// use psycopg 3; mariadb:// and mysql:// use PyMySQL."""
    db: Db = request.getfixturevalue("pg" if scheme == "postgres" else "maria")
    name, table = db.create()
    db.insert(table, rows_of(db, range(3)))
    url = scheme + "://" + db.url.split("://", 1)[1]
    frames, _ = take(source(url, table=name), None)
    assert ids(frames) == [0, 1, 2]
    assert frames[0]["_source_file"][0].startswith(f"{scheme}://")


def test_a_cursor_it_cannot_read_is_a_clear_error(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (id INTEGER, wm INTEGER)")
    engine.dispose()
    config = source(f"sqlite:///{tmp_path / 'c.db'}", table="t", watermark="wm")
    with pytest.raises(SourceError, match="stored cursor"):
        list(read_chunks(config, cursor={"watermark": {"v": 1}, "rows": 3}))
