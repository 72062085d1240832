"""The I/O edge of the catalog: URLs, engines, schema migrations and backend errors.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE``, so a server process and a CLI process can share one file: writers queue
instead of failing. Migrations run under a lock (the write lock on SQLite, an advisory lock on
PostgreSQL), so two processes opening a new catalog at once create it once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

from loopml.core import errors
from loopml.core.errors import LoopmlError, RegistryError

HEAD = "0003"  # the newest revision in migrations/versions (a test keeps the two in step)
MIGRATIONS = Path(__file__).parent / "migrations"
WRITE = "loopml_write"  # execution option: this transaction writes
BUSY_TIMEOUT_MS = 30_000
_PG_MIGRATION_LOCK = 0x6C6F6F70  # "loop": one advisory lock key for schema changes
_URL_HINT = (
    "Set storage.catalog_url in loopml.yaml to e.g. 'sqlite:///.loopml/catalog.db' or "
    "'postgresql+psycopg://user@host:5432/dbname'."
)


def resolve_url(url: str, base_dir: Path) -> URL:
    """Parse ``url``; a relative SQLite path is taken relative to ``base_dir``."""
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise RegistryError(f"Catalog URL {url!r} is not a database URL.", hint=_URL_HINT) from exc
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not path.is_absolute():
            path = base_dir / path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(
                f"Cannot create the folder of the catalog file {path}: {exc.strerror or exc}.",
                hint=_URL_HINT,
            ) from exc
        parsed = parsed.set(database=str(path))
    return parsed


def make_engine(url: URL) -> Engine:
    """An engine for ``url`` that stores JSON safely and, on SQLite, shares the file well."""
    options: dict[str, Any] = {"json_serializer": dumps}
    sqlite = url.get_backend_name() == "sqlite"
    memory = sqlite and url.database in (None, "", ":memory:")
    if sqlite:
        options["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        if memory:  # one shared connection, or every checkout would see a new empty database
            options["poolclass"] = sa.pool.StaticPool
    elif url.get_backend_name() == "postgresql":
        options["connect_args"] = {"connect_timeout": 10}
        options["pool_pre_ping"] = True
    try:
        engine = sa.create_engine(url, **options)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise RegistryError(
            f"Cannot use catalog URL {safe(url)}: {first_line(exc)}", hint=_URL_HINT
        ) from exc
    if sqlite:
        _tune_sqlite(engine, wal=not memory)
    return engine


def _tune_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling would start writes lazily, where a busy
        # database fails at once instead of waiting; this module emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if wal:
            _set_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _set_wal(cursor: Any) -> None:
    """Switch a file to WAL once (the mode is stored in the file). Changing the mode needs a
    moment with no other writer, and SQLite does not wait for it, so retry for a while."""
    import sqlite3
    import time

    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


# ---- migrations --------------------------------------------------------------------------


def alembic_config(connection: Connection | None = None) -> Any:
    """An Alembic ``Config`` for the packaged migrations, bound to ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def current_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Bring the schema to ``HEAD``; cheap when it is there already, safe to run at once.

    A database with no tables at all gets the newest schema in one step (the tables' own
    definitions, stamped ``HEAD``, as Alembic advises for a new database) instead of every
    migration in turn; a test keeps the two schemas equal."""
    with engine.connect() as conn:
        found = current_revision(conn)
    if found == HEAD:
        return
    with engine.execution_options(**{WRITE: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        if not sa.inspect(conn).get_table_names():  # under the lock: nobody made it meanwhile
            create_newest(conn)
            return
        from alembic import command
        from alembic.util import CommandError

        try:
            command.upgrade(alembic_config(conn), "head")
        except CommandError as exc:
            raise RegistryError(
                f"The catalog at {safe(engine.url)} has schema revision {found!r}, which this "
                f"version of loopml does not know (it knows up to {HEAD!r}).",
                hint="A newer loopml wrote this catalog; upgrade loopml to use it.",
            ) from exc


def create_newest(conn: Connection) -> None:
    """The newest schema on an empty database, stamped ``HEAD`` in Alembic's own table."""
    from loopml.registry._tables import Base

    Base.metadata.create_all(conn)
    version = sa.Table("alembic_version", sa.MetaData(),
                       sa.Column("version_num", sa.String(32), nullable=False),
                       sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))
    version.create(conn)
    conn.execute(version.insert().values(version_num=HEAD))


# ---- values and errors -------------------------------------------------------------------


def dumps(value: Any) -> str:
    """JSON text for any params or metrics: numpy scalars, tuples, paths and NaN included."""
    return json.dumps(jsonable(value))


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data; non-finite floats become the strings 'nan', 'inf'.

    >>> jsonable({"a": (1, float("nan")), "b": {2}})
    {'a': [1, 'nan'], 'b': [2]}
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return jsonable(value.item())
    return str(value)


def floats(values: dict[str, Any]) -> dict[str, float]:
    """Metrics back from JSON (where 'nan' and 'inf' were stored as text)."""
    return {k: float(v) for k, v in values.items()}


def safe(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def first_line(exc: BaseException) -> str:
    """The first line of the driver's own error (SQLAlchemy wraps it as ``orig``)."""
    return errors.first_line(getattr(exc, "orig", None) or exc)


@contextmanager
def translate(url: URL, action: str) -> Iterator[None]:
    """Turn a backend error while doing ``action`` into one ``RegistryError``."""
    try:
        yield
    except LoopmlError:
        raise
    except sa.exc.OperationalError as exc:
        if exc.connection_invalidated or "connect" in str(exc).lower():
            raise RegistryError(
                f"Cannot reach the catalog database at {safe(url)}: {first_line(exc)}",
                hint="Start the database server and create the database, or fix "
                "storage.catalog_url in loopml.yaml.",
            ) from exc
        raise RegistryError(f"{action} failed: {first_line(exc)}") from exc
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        raise RegistryError(f"{action} failed: {first_line(exc)}") from exc
