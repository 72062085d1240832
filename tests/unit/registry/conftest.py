"""Catalog fixtures: every catalog test runs on SQLite and on the local PostgreSQL server.

Each PostgreSQL test gets a database of its own, copied from a migrated template (fast), and
dropped afterwards. Without a reachable server those tests skip and say why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopml.core.records import IngestResult, TableRef, ValidationReport, Violation
from loopml.registry import Catalog

PG_URL = os.environ.get(
    "LOOPML_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)]


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    """An AUTOCOMMIT engine on the server's maintenance database, or a skip."""
    engine = sa.create_engine(
        PG_URL,
        isolation_level="AUTOCOMMIT",
        poolclass=sa.NullPool,
        connect_args={"connect_timeout": 3},
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable: {str(exc).splitlines()[0]}")
    yield engine
    engine.dispose()


def _create(admin: sa.Engine, *, template: str | None = None) -> str:
    name = f"loopml_t_{uuid.uuid4().hex[:12]}"
    copy = f" TEMPLATE {template}" if template else ""
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}{copy}"))
    return name


def _drop(admin: sa.Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _url(name: str) -> str:
    return sa.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_template(pg_admin: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to the newest schema, to copy for each test."""
    name = _create(pg_admin)
    Catalog(_url(name), tmp_path_factory.mktemp("template")).close()
    yield name
    _drop(pg_admin, name)


@pytest.fixture
def pg_empty(pg_admin: sa.Engine) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (no schema yet)."""
    name = _create(pg_admin)
    yield _url(name)
    _drop(pg_admin, name)


@pytest.fixture
def pg_empty_second(pg_admin: sa.Engine) -> Iterator[str]:
    """Another new, empty PostgreSQL database (to compare two ways of making a schema)."""
    name = _create(pg_admin)
    yield _url(name)
    _drop(pg_admin, name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def catalog_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A catalog URL with the newest schema, private to the test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    admin = request.getfixturevalue("pg_admin")
    name = _create(admin, template=request.getfixturevalue("pg_template"))
    yield _url(name)
    _drop(admin, name)


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL of a database with no schema yet, private to the test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    return request.getfixturevalue("pg_empty")


@pytest.fixture
def catalog(catalog_url: str, tmp_path: Path) -> Iterator[Catalog]:
    with Catalog(catalog_url, tmp_path / "artifacts") as opened:
        yield opened


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    """A folder like a saved model bundle: files at the top and one in a subfolder."""
    folder = tmp_path / "bundle"
    (folder / "extra").mkdir(parents=True)
    (folder / "model.joblib").write_bytes(bytes(range(256)) * 10)
    (folder / "bundle.json").write_text('{"task": "classification"}')
    (folder / "extra" / "notes.txt").write_text("trained on flights")
    return folder


@pytest.fixture
def register(catalog: Catalog, model_folder: Path):
    """Register ``model_folder`` under a name with a score; returns the ModelVersion."""

    def _register(name: str = "flights", score: float = 0.8, run_id: str | None = None):
        return catalog.register_model(
            name,
            model_folder,
            run_id=run_id,
            task="classification",
            metric="roc_auc",
            score=score,
            metrics={"roc_auc": score, "f1": 0.5},
        )

    return _register


@pytest.fixture
def finish(catalog: Catalog):
    """Finish a run with typical values; keyword arguments override them."""

    def _finish(run_id: str, **changes):
        fields = {
            "status": "finished",
            "metrics": {"roc_auc": 0.91},
            "lake_versions": {"clean/flights": 3},
            "contract_fingerprint": "c0ffee",
            "git_commit": "abc1234",
        }
        return catalog.finish_run(run_id, **(fields | changes))

    return _finish


@pytest.fixture
def make_ingest():
    """Build an IngestResult of 100 rows in, 97 clean and 3 quarantined."""

    def _make(ingest_id: str = "ing-1", source: str = "flights", **changes) -> IngestResult:
        report = ValidationReport(
            source=source,
            contract_fingerprint="c0ffee",
            rows_in=100,
            rows_accepted=97,
            rows_quarantined=3,
            duplicates=1,
            violations=(Violation(column="dep_delay", rule="type", rows=3, example="n/a"),),
            coerced_columns=("dep_delay",),
        )
        fields = {
            "ingest_id": ingest_id,
            "source": source,
            "files": ("a.csv", "b.csv"),
            "report": report,
            "raw": TableRef(name=f"raw/{source}", version=2),
            "clean": TableRef(name=f"clean/{source}", version=3),
            "quarantine": TableRef(name=f"quarantine/{source}", version=0),
            "started_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            "seconds": 1.25,
        }
        return IngestResult(**(fields | changes))

    return _make
