"""The database edge: migrations, shared use by several processes, URLs and backend errors."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from loopml.core.config import StorageConfig
from loopml.core.errors import RegistryError
from loopml.registry import Catalog
from loopml.registry._db import HEAD, alembic_config, current_revision
from loopml.registry._tables import Base

TABLES = {
    "runs",
    "candidates",
    "ingests",
    "artifacts",
    "model_versions",
    "model_files",
    "model_aliases",
    "events",
    "source_cursors",
    "ingest_intents",
    "leaderboards",
}


def _schema_diff(url: str) -> list:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    names = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    return names


def _alembic(url: str, action, revision: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        action(alembic_config(conn), revision)
    engine.dispose()


def test_head_constant_matches_migration_scripts() -> None:
    """The revision the catalog checks on open is the newest script's."""
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD


def test_models_and_migrations_agree(empty_url: str, tmp_path: Path) -> None:
    """After migrating, autogenerate finds no difference between the ORM models and the DB."""
    _alembic(empty_url, command.upgrade, "head")
    assert TABLES <= _tables(empty_url)
    assert _schema_diff(empty_url) == []


def test_a_new_catalog_has_the_schema_the_migrations_make(empty_url: str, tmp_path: Path,
                                                          request: pytest.FixtureRequest) -> None:
    """A new catalog is created in one step, stamped at the newest revision, with the same
    tables, columns, types, defaults, keys and indexes as running every migration; a later
    migration starts from there."""
    Catalog(empty_url, tmp_path / "a").close()
    engine = sa.create_engine(empty_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert current_revision(conn) == HEAD
    engine.dispose()
    assert _schema_diff(empty_url) == []
    migrated = f"sqlite:///{tmp_path / 'migrated.db'}" if empty_url.startswith("sqlite") else (
        request.getfixturevalue("pg_empty_second"))
    _alembic(migrated, command.upgrade, "head")
    assert _shape(empty_url) == _shape(migrated)
    _alembic(empty_url, command.downgrade, "0002")  # the migrations work on it too
    _alembic(empty_url, command.upgrade, "head")
    assert _schema_diff(empty_url) == []


def _shape(url: str) -> dict:
    """Every table's columns (type, nullable, default), keys and indexes, by name."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    found = {}
    inspector = sa.inspect(engine)
    for table in sorted(inspector.get_table_names()):
        found[table] = {
            "columns": sorted((c["name"], str(c["type"]), c["nullable"],
                               str(c.get("default")).strip("'")) for c in
                              inspector.get_columns(table)),
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "fk": sorted((f["name"], tuple(f["constrained_columns"]), f["referred_table"])
                         for f in inspector.get_foreign_keys(table)),
            "ix": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                         for i in inspector.get_indexes(table)),
            "uq": sorted((u["name"], tuple(u["column_names"]))
                         for u in inspector.get_unique_constraints(table)),
        }
    engine.dispose()
    return found


def test_upgrade_downgrade_upgrade(empty_url: str) -> None:
    """The migrations run up, all the way down, and up again to the same schema."""
    _alembic(empty_url, command.upgrade, "head")
    assert TABLES <= _tables(empty_url)
    _alembic(empty_url, command.downgrade, "base")
    assert _tables(empty_url) & TABLES == set()
    _alembic(empty_url, command.upgrade, "head")
    assert _schema_diff(empty_url) == []


def test_opening_again_keeps_data(catalog_url: str, tmp_path: Path) -> None:
    """Opening an existing catalog migrates nothing and loses nothing."""
    with Catalog(catalog_url, tmp_path / "a") as first:
        run_id = first.start_run(project="p", params={})
    with Catalog(catalog_url, tmp_path / "a") as again:
        assert again.get_run(run_id).project == "p"


def test_concurrent_opens_create_the_schema_once(empty_url: str, tmp_path: Path) -> None:
    """Several processes opening a new catalog at the same moment all succeed."""
    start = threading.Barrier(4)

    def open_one(i: int) -> str:
        start.wait()
        with Catalog(empty_url, tmp_path / "a") as catalog:
            return catalog.start_run(project=f"p{i}", params={})

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(open_one, range(4)))
    with Catalog(empty_url, tmp_path / "a") as catalog:
        assert {r.id for r in catalog.runs()} == set(ids)
    assert _schema_diff(empty_url) == []


def test_two_catalogs_share_one_database(
    catalog_url: str, tmp_path: Path, model_folder: Path
) -> None:
    """Two Catalog objects registering at once get distinct consecutive versions."""
    first, second = Catalog(catalog_url, tmp_path / "a"), Catalog(catalog_url, tmp_path / "a")
    start = threading.Barrier(2)

    def register_many(catalog: Catalog) -> list[int]:
        start.wait()
        return [
            catalog.register_model(
                "shared",
                model_folder,
                run_id=None,
                task="regression",
                metric="rmse",
                score=1.0,
                metrics={},
            ).version
            for _ in range(4)
        ]

    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(register_many, (first, second)))
    assert sorted(got[0] + got[1]) == list(range(1, 9))
    first.set_alias("shared", "champion", 8)
    assert second.model_version("shared").version == 8
    assert second.fetch("shared", 5).is_dir()
    first.close(), second.close()


def test_sqlite_writer_waits_for_a_busy_file_and_readers_do_not(tmp_path: Path) -> None:
    """While another process holds the write lock, writes wait for it and reads go on (WAL)."""
    path = tmp_path / "catalog.db"
    with Catalog(f"sqlite:///{path}", tmp_path / "a") as catalog:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        other.execute("BEGIN IMMEDIATE")
        other.execute(
            "INSERT INTO events (at, kind, subject, payload) "
            "VALUES ('2026-01-01 00:00:00', 'x', 'y', '{}')"
        )
        # a reader sees the last commit while the lock is held (it would hang if it waited)
        assert catalog.events() == []
        committed = threading.Event()

        def commit() -> None:
            other.execute("COMMIT")
            committed.set()

        release = threading.Timer(0.5, commit)
        release.start()
        catalog.log_event("after", "y", {})  # waits for the lock instead of failing
        assert committed.is_set()  # it could only write once the other writer let go
        release.join()
        assert [e["kind"] for e in catalog.events()] == ["after", "x"]
        other.close()


def test_relative_paths_resolve_against_the_project(tmp_path: Path) -> None:
    """The default storage config puts the catalog and artifacts under <project>/.loopml."""
    with Catalog.from_config(StorageConfig(), base_dir=tmp_path) as catalog:
        catalog.start_run(project="p", params={})
        assert catalog.artifacts_dir == (tmp_path / ".loopml" / "artifacts").resolve()
    assert (tmp_path / ".loopml" / "catalog.db").is_file()


def test_in_memory_sqlite_works(tmp_path: Path) -> None:
    """'sqlite://' gives a throwaway catalog for experiments."""
    with Catalog("sqlite://", tmp_path / "a") as catalog:
        run_id = catalog.start_run(project="p", params={})
        assert catalog.get_run(run_id).status == "running"


def test_unreachable_server_gives_a_clear_error(tmp_path: Path) -> None:
    """A database server that is not there raises RegistryError with a hint, not a driver error."""
    with pytest.raises(RegistryError) as err:
        Catalog("postgresql+psycopg://u:secret@127.0.0.1:1/none", tmp_path / "a")
    assert "Cannot reach" in err.value.message and "catalog_url" in err.value.hint
    assert "secret" not in str(err.value)
    assert isinstance(err.value.__cause__, sa.exc.OperationalError)


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://x/y", "mysql://u@h/db"])
def test_unusable_url_gives_a_clear_error(url: str, tmp_path: Path) -> None:
    """A malformed URL or one without an installed driver raises RegistryError with a hint."""
    with pytest.raises(RegistryError) as err:
        Catalog(url, tmp_path / "a")
    assert "sqlite:///" in err.value.hint


def test_remote_artifacts_uri_is_refused(tmp_path: Path) -> None:
    """Artifacts live in a local folder; an object-store URI is refused with a hint."""
    with pytest.raises(RegistryError) as err:
        Catalog(f"sqlite:///{tmp_path / 'c.db'}", "s3://bucket/artifacts")
    assert "artifacts_uri" in err.value.hint


def test_catalog_from_a_newer_loopml_is_refused(catalog_url: str, tmp_path: Path) -> None:
    """A schema revision this code does not know raises RegistryError asking for an upgrade."""
    Catalog(catalog_url, tmp_path / "a").close()
    engine = sa.create_engine(catalog_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(RegistryError, match="9999") as err:
        Catalog(catalog_url, tmp_path / "a")
    assert "upgrade loopml" in err.value.hint


def test_upgrade_from_0001_keeps_ingests(empty_url: str) -> None:
    """A catalog at revision 0001 gains cursors and intents; its rows stay."""
    _alembic(empty_url, command.upgrade, "0001")
    engine = sa.create_engine(empty_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO events (at, kind, subject, payload) "
            "VALUES ('2026-01-01 00:00:00+00', 'ingest', 'old', '{}')"))
    engine.dispose()
    assert "ingest_intents" not in _tables(empty_url)
    _alembic(empty_url, command.upgrade, "head")
    assert {"ingest_intents", "source_cursors"} <= _tables(empty_url)
    engine = sa.create_engine(empty_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT subject FROM events")).scalar() == "old"
    engine.dispose()


def test_upgrade_from_0002_reads_old_candidates_with_defaults(empty_url: str,
                                                               tmp_path: Path) -> None:
    """A catalog at 0002 gains the candidate fields and leaderboards; its candidates read back
    with the defaults of the new fields, and the run has no leaderboard."""
    _alembic(empty_url, command.upgrade, "0002")
    engine = sa.create_engine(empty_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO runs (id, project, kind, status, started_at, params, metrics, "
            "lake_versions, code_version) VALUES ('ab12cd34ef56', 'old', 'train', 'finished', "
            "'2026-01-01 00:00:00+00', '{}', '{}', '{}', '0.1')"))
        conn.execute(sa.text(
            "INSERT INTO candidates (run_id, position, learner, params, cv_score, cv_std, "
            "valid_score, fit_time_s, trial, status, message) VALUES ('ab12cd34ef56', 0, "
            "'lightgbm', '{\"num_leaves\": 31}', 0.9, 0.01, 0.89, 1.5, 0, 'ok', '')"))
    engine.dispose()
    assert "leaderboards" not in _tables(empty_url)
    with Catalog(empty_url, tmp_path / "a") as catalog:  # opening upgrades to the head
        (old,) = catalog.candidates("ab12cd34ef56")
        assert catalog.leaderboard("ab12cd34ef56") is None
    assert (old.learner, old.params, old.cv_score) == ("lightgbm", {"num_leaves": 31}, 0.9)
    assert (old.name, old.origin, old.predict_ms_per_1000, old.ensemble_weight) == (
        "", "portfolio", None, 0.0)
    assert _schema_diff(empty_url) == []
