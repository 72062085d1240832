"""The catalog: runs, candidates, ingests, artifacts, model versions, aliases, events, lineage."""

from __future__ import annotations

import math
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loopml.core.errors import RegistryError
from loopml.core.records import IngestResult, ModelVersion, Run
from loopml.registry import _files, _models, _rows
from loopml.registry._db import (
    WRITE,
    jsonable,
    make_engine,
    resolve_url,
    safe,
    translate,
    upgrade,
)
from loopml.registry._intents import IngestLog
from loopml.registry._leaderboards import LeaderboardLog
from loopml.registry._refs import DEFAULT_ALIAS, LATEST, check_name, unknown
from loopml.registry._tables import (
    AliasRow,
    ArtifactRow,
    EventRow,
    IngestRow,
    ModelVersionRow,
    RunRow,
)

if TYPE_CHECKING:
    from loopml.core.config import StorageConfig

RUN_STATUSES = ("running", "finished", "failed", "cancelled")
_RETRIES = 5  # attempts to claim a version number when another process claims it first


class Catalog(IngestLog, LeaderboardLog):
    """Runs, metrics, model versions with aliases, artifacts, events and lineage in one SQL
    database (SQLite file or PostgreSQL); artifact files live under ``artifacts_uri``.

    >>> import tempfile
    >>> from pathlib import Path
    >>> home = Path(tempfile.mkdtemp())
    >>> with Catalog("sqlite:///catalog.db", "artifacts", base_dir=home) as catalog:
    ...     run_id = catalog.start_run(project="demo", params={"seed": 0})
    ...     _ = (home / "model").mkdir(), (home / "model" / "weights.txt").write_text("42")
    ...     mv = catalog.register_model("demo", home / "model", run_id=run_id,
    ...                                 task="regression", metric="rmse", score=1.5, metrics={})
    ...     catalog.set_alias("demo", "champion", mv.version)
    ...     catalog.model_version("demo").ref, (catalog.fetch("demo", 1) / "weights.txt").read_text()
    ('demo@1', '42')
    """

    def __init__(self, url: str, artifacts_uri: str | Path, *, base_dir: str | Path | None = None):
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        if "://" in str(artifacts_uri) and not str(artifacts_uri).startswith("file://"):
            raise RegistryError(
                f"Artifacts URI {artifacts_uri!r} is not a local folder.",
                hint="Set storage.artifacts_uri in loopml.yaml to a folder path.",
            )
        root = Path(str(artifacts_uri).removeprefix("file://"))
        self.artifacts_dir = (root if root.is_absolute() else base / root).resolve()
        self.url = resolve_url(str(url), base)
        self._engine = make_engine(self.url)
        self._writer = self._engine.execution_options(**{WRITE: True})
        try:
            with translate(self.url, "Opening the catalog"):
                self.artifacts_dir.mkdir(parents=True, exist_ok=True)
                upgrade(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    @classmethod
    def from_config(cls, storage: StorageConfig, *, base_dir: str | Path) -> Catalog:
        """Open the catalog a project's ``storage`` section names, relative to ``base_dir``."""
        return cls(storage.catalog_url, storage.artifacts_uri, base_dir=base_dir)

    def __repr__(self) -> str:
        return f"Catalog({safe(self.url)!r}, {str(self.artifacts_dir)!r})"

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _session(self, action: str, *, write: bool = False) -> Iterator[Session]:
        with translate(self.url, action):
            engine = self._writer if write else self._engine
            with Session(engine, expire_on_commit=False) as s, s.begin():
                yield s

    # ---- runs ---------------------------------------------------------------------------

    def start_run(
        self,
        *,
        project: str,
        kind: str = "train",
        params: dict[str, Any],
        code_version: str | None = None,
    ) -> str:
        """Record a run that starts now and return its id (32 hex digits). ``code_version``
        defaults to the installed loopml version."""
        run_id = uuid.uuid4().hex
        with self._session("Starting a run", write=True) as s:
            s.add(
                RunRow(
                    id=run_id,
                    project=project,
                    kind=kind,
                    status="running",
                    started_at=_rows.now(),
                    finished_at=None,
                    params=jsonable(params),
                    metrics={},
                    lake_versions={},
                    contract_fingerprint=None,
                    git_commit=None,
                    code_version=code_version or _rows.code_version(),
                )
            )
        return run_id

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        metrics: dict[str, float],
        lake_versions: dict[str, int],
        contract_fingerprint: str | None,
        git_commit: str | None,
    ) -> Run:
        """Close a running run with its outcome, metrics and the data and code it used."""
        if status not in RUN_STATUSES[1:]:
            raise RegistryError(
                f"A run cannot finish with status {status!r}.",
                hint=f"Use one of {', '.join(map(repr, RUN_STATUSES[1:]))}.",
            )
        with self._session("Finishing a run", write=True) as s:
            row = _rows.run_row(s, run_id)
            if row.status != "running":
                raise RegistryError(
                    f"Run {row.id} has already finished (status {row.status!r}).",
                    hint="Start a new run for new results.",
                )
            row.status, row.finished_at = status, _rows.now()
            row.metrics = jsonable({k: float(v) for k, v in metrics.items()})
            row.lake_versions = {k: int(v) for k, v in lake_versions.items()}
            row.contract_fingerprint, row.git_commit = contract_fingerprint, git_commit
            return _rows.run_record(row)

    def get_run(self, run_id: str) -> Run:
        """The run with this id, or with this unique id prefix (at least 6 digits)."""
        with self._session("Reading a run") as s:
            return _rows.run_record(_rows.run_row(s, run_id))

    def runs(self, *, project: str | None = None, limit: int = 50) -> list[Run]:
        """The newest runs first, of one project or of all."""
        query = sa.select(RunRow).order_by(RunRow.started_at.desc(), RunRow.id)
        if project is not None:
            query = query.where(RunRow.project == project)
        with self._session("Listing runs") as s:
            return [_rows.run_record(r) for r in s.scalars(query.limit(_rows.limit(limit)))]

    def _run_id(self, run_id: str | None) -> str | None:
        if run_id is None:
            return None
        with self._session("Reading a run") as s:
            return _rows.run_row(s, run_id).id

    # ---- ingests and run artifacts (candidates and leaderboards: LeaderboardLog) -------

    def record_ingest(self, result: IngestResult, *, run_id: str | None = None) -> None:
        """Record an ingest with its row counts in and out; recording it again updates it."""
        with self._session("Recording an ingest", write=True) as s:
            run = None if run_id is None else _rows.run_row(s, run_id).id
            row = s.get(IngestRow, result.ingest_id) or IngestRow(id=result.ingest_id)
            s.add(_rows.fill_ingest(row, result, run))

    def ingests(self, *, source: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Recorded ingests, newest first, as plain dicts: ingest_id, run_id, source, files,
        rows_in, rows_accepted, rows_quarantined, duplicates, contract_fingerprint, raw, clean,
        quarantine (``{"name", "version"}`` or None), violations, started_at, seconds."""
        query = sa.select(IngestRow).order_by(IngestRow.started_at.desc(), IngestRow.id)
        if source is not None:
            query = query.where(IngestRow.source == source)
        with self._session("Listing ingests") as s:
            return [_rows.ingest_dict(r) for r in s.scalars(query.limit(_rows.limit(limit)))]

    def ingest_totals(self, source: str) -> dict[str, int]:
        """A source's ingests summed: ingests, rows_in, rows_accepted, rows_quarantined and
        warned_rows (accepted rows that broke only ``warn`` rules)."""
        query = sa.select(IngestRow.rows_in, IngestRow.rows_accepted,
                          IngestRow.rows_quarantined, IngestRow.report
                          ).where(IngestRow.source == source)
        out = dict.fromkeys(("ingests", "rows_in", "rows_accepted", "rows_quarantined",
                             "warned_rows"), 0)
        with self._session("Summing ingests") as s:
            for rows_in, accepted, quarantined, report in s.execute(query):
                out["ingests"] += 1
                out["rows_in"] += rows_in
                out["rows_accepted"] += accepted
                out["rows_quarantined"] += quarantined
                out["warned_rows"] += int((report or {}).get("warned_rows", 0))
        return out

    def ingests_behind(self, versions: dict[str, int]) -> list[dict[str, Any]]:
        """The ingests whose commits make up these clean table versions (``{table:
        version}``, as a run records them), oldest first, as ``ingests`` gives them."""
        if not versions:
            return []
        wanted = sa.or_(*(sa.and_(IngestRow.clean_table == name, IngestRow.clean_version <= v)
                          for name, v in versions.items()))
        query = sa.select(IngestRow).where(wanted).order_by(IngestRow.started_at, IngestRow.id)
        with self._session("Listing ingests") as s:
            return [_rows.ingest_dict(r) for r in s.scalars(query)]

    def log_artifact(self, run_id: str, path: Path, *, name: str, kind: str = "report") -> str:
        """Copy a file (a report, a plot ...) into the store as ``name`` of the run and return
        where the copy is. Logging the same name again replaces it."""
        check_name("artifact", name)
        path = Path(path)
        if not path.is_file():
            raise RegistryError(
                f"Cannot log artifact {name!r}: {path} is not a file.",
                hint="Pass the path of a file that exists.",
            )
        run_id = self.get_run(run_id).id  # also resolves an id prefix
        key = f"runs/{run_id}/{name}"
        target = self.artifacts_dir / key
        incoming = target.with_name(f".incoming-{uuid.uuid4().hex}")
        try:
            with translate(self.url, f"Copying artifact {name!r}"):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, incoming)
            with self._session("Logging an artifact", write=True) as s:
                row = s.scalar(
                    sa.select(ArtifactRow).where(
                        ArtifactRow.run_id == run_id, ArtifactRow.name == name
                    )
                ) or ArtifactRow(run_id=run_id, name=name)
                row.kind, row.path, row.created_at = kind, key, _rows.now()
                row.sha256, row.size = _files.sha256(incoming), incoming.stat().st_size
                s.add(row)
                s.flush()
                incoming.replace(target)
        finally:
            _files.remove(incoming)
        return str(target)

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        """The files logged to a run: name, kind, path, sha256, size, created_at."""
        with self._session("Listing artifacts") as s:
            run = _rows.run_row(s, run_id)
            rows = _rows.of_run(s, ArtifactRow, run.id, ArtifactRow.name)
            return [_rows.artifact_dict(r, self.artifacts_dir) for r in rows]

    def fetch_artifact(self, run_id: str, name: str) -> Path:
        """The stored file of a run's artifact, after checking its sha256."""
        with self._session("Reading an artifact") as s:
            run = _rows.run_row(s, run_id)
            rows = {r.name: r for r in _rows.of_run(s, ArtifactRow, run.id, ArtifactRow.name)}
        if name not in rows:
            raise unknown(
                f"artifact of run {run.id}",
                name,
                sorted(rows),
                hint="Artifacts are logged with Catalog.log_artifact.",
                empty="the run has no artifacts",
            )
        path = self.artifacts_dir / rows[name].path
        with translate(self.url, f"Checking artifact {name!r}"):
            _files.verify_file(path, rows[name].sha256, what=f"artifact {name!r} of run {run.id}")
        return path

    # ---- models -------------------------------------------------------------------------

    def register_model(
        self,
        name: str,
        folder: Path,
        *,
        run_id: str | None,
        task: str,
        metric: str,
        score: float,
        metrics: dict[str, float],
    ) -> ModelVersion:
        """Copy ``folder`` to ``<artifacts>/models/<name>/<version>/`` as the model's next
        version (1, 2, 3 ...), recording every file's sha256 and size."""
        check_name("model", name)
        if not isinstance(score, (int, float)) or not math.isfinite(score):
            raise RegistryError(
                f"Cannot register {name!r} with score {score!r}: the score must be a finite "
                "number, since versions are compared on it.",
                hint="Register the model only after it was evaluated.",
            )
        run_id = self._run_id(run_id)

        def draft() -> ModelVersionRow:  # a fresh row for each attempt
            return ModelVersionRow(
                name=name,
                run_id=run_id,
                task=task,
                metric=metric,
                score=float(score),
                metrics=jsonable({k: float(v) for k, v in metrics.items()}),
                created_at=_rows.now(),
            )

        with translate(self.url, f"Copying model {name!r}"):
            staging = _files.stage_folder(Path(folder), self.artifacts_dir / "models" / name)
        try:
            files = _files.manifest(staging)
            for attempt in range(_RETRIES):
                try:
                    with self._session(f"Registering model {name!r}", write=True) as s:
                        return _models.insert_version(
                            s, self.artifacts_dir, staging, files, draft()
                        )
                except RegistryError as exc:  # another process took the number: try the next
                    if not isinstance(exc.__cause__, sa.exc.IntegrityError) or (
                        attempt == _RETRIES - 1
                    ):
                        raise
            raise AssertionError("unreachable")
        finally:
            _files.remove(staging)

    def model_version(self, name: str, ref: int | str = DEFAULT_ALIAS) -> ModelVersion:
        """A version of a model by number, alias or ``"latest"`` (the newest)."""
        with self._session("Reading a model version") as s:
            row = _models.version_row(s, name, ref)
            aliases = _models.version_aliases(s, [row])[0]
            return _models.to_record(row, aliases, self.artifacts_dir)

    def model_versions(self, name: str | None = None) -> list[ModelVersion]:
        """Every version of one model (or of all), oldest first, with their aliases."""
        with self._session("Listing model versions") as s:
            query = sa.select(ModelVersionRow).order_by(
                ModelVersionRow.name, ModelVersionRow.version
            )
            if name is not None:
                _models.version_row(s, name, LATEST)  # raises for an unknown model
                query = query.where(ModelVersionRow.name == name)
            rows = list(s.scalars(query))
            aliases = _models.version_aliases(s, rows)
            return [_models.to_record(r, a, self.artifacts_dir) for r, a in zip(rows, aliases)]

    def models(self) -> list[str]:
        """The names of the registered models, sorted."""
        with self._session("Listing models") as s:
            return _models.model_names(s)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` (e.g. ``champion``) at a version, moving it if it pointed elsewhere."""
        check_name("alias", alias)
        if alias == LATEST:
            raise RegistryError(
                f"{LATEST!r} always means the newest version and cannot be set.",
                hint="Choose another alias name, such as 'champion' or 'challenger'.",
            )
        with self._session(f"Setting alias {name}@{alias}", write=True) as s:
            row = _models.version_row(s, name, int(version))
            current = s.get(AliasRow, (name, alias))
            previous = None if current is None else current.version
            if current is None:
                s.add(AliasRow(name=name, alias=alias, version=row.version, updated_at=_rows.now()))
            else:
                current.version, current.updated_at = row.version, _rows.now()
            payload = {"alias": alias, "version": row.version, "previous": previous}
            s.add(_rows.event_row("alias_set", name, payload))

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias; the version it pointed at stays."""
        with self._session(f"Deleting alias {name}@{alias}", write=True) as s:
            row = _models.version_row(s, name, alias)
            current = s.get(AliasRow, (name, alias))
            if current is None:  # "latest" resolves, but is no alias
                raise RegistryError(f"{alias!r} is not an alias of model {name!r}.")
            s.delete(current)
            payload = {"alias": alias, "version": row.version}
            s.add(_rows.event_row("alias_deleted", name, payload))

    def fetch(self, name: str, version: int | str) -> Path:
        """The local folder of a model version, after checking that it holds exactly the
        registered files with their sha256; raises ``IntegrityError`` otherwise. Call it
        before every load."""
        with self._session("Reading a model version") as s:
            row = _models.version_row(s, name, version)
            expected = _models.files_of(s, row.name, row.version)
        folder = self.artifacts_dir / row.path
        with translate(self.url, f"Checking {row.name}@{row.version}"):
            _files.verify(folder, expected, what=f"model {row.name}@{row.version}")
        return folder

    def files_of(self, name: str, version: int) -> dict[str, tuple[str, int]]:
        """The registered files of a version: posix path -> (sha256, size)."""
        with self._session("Reading a model version's files") as s:
            row = _models.version_row(s, name, int(version))
            return _models.files_of(s, row.name, row.version)

    def export_model(self, name: str, ref: int | str, dest: Path) -> ModelVersion:
        """Write a version to ``dest`` as a bundle another catalog installs (``install_model``):
        its verified files and its record with every file's sha256."""
        from loopml.registry._bundle import export_version

        return export_version(self, name, ref, Path(dest))

    def install_model(self, folder: Path, *, alias: str | None = None) -> ModelVersion:
        """Register a bundle written by ``export_model`` after checking every file's sha256,
        and point ``alias`` at it; a version with the same files is reused, not copied again."""
        from loopml.registry._bundle import install_version

        return install_version(self, Path(folder), alias=alias)

    # ---- events and lineage -------------------------------------------------------------

    def log_event(self, kind: str, subject: str, payload: dict[str, Any]) -> None:
        """Record that something happened to ``subject`` (a model name, a run id ...)."""
        with self._session("Logging an event", write=True) as s:
            s.add(_rows.event_row(kind, subject, payload))

    def events(
        self, *, subject: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Events, newest first: id, at, kind, subject, payload."""
        query = sa.select(EventRow).order_by(EventRow.id.desc())
        if subject is not None:
            query = query.where(EventRow.subject == subject)
        if kind is not None:
            query = query.where(EventRow.kind == kind)
        with self._session("Listing events") as s:
            return [_rows.event_dict(r) for r in s.scalars(query.limit(_rows.limit(limit)))]

    def lineage(self, name: str, version: int | str) -> dict[str, Any]:
        """Where a model version came from: ``model`` (with its files), the ``run`` (params,
        metrics, lake versions, contract fingerprint, git commit, code version), the run's
        ``ingests`` and ``artifacts``. ``run`` is None for a model registered without one."""
        with self._session("Reading lineage") as s:
            row = _models.version_row(s, name, version)
            model = asdict(
                _models.to_record(row, _models.version_aliases(s, [row])[0], self.artifacts_dir)
            )
            model["files"] = [
                {"path": p, "sha256": h, "size": n}
                for p, (h, n) in sorted(_models.files_of(s, row.name, row.version).items())
            ]
            run = None if row.run_id is None else s.get(RunRow, row.run_id)
            if run is None:
                return {"model": model, "run": None, "ingests": [], "artifacts": []}
            ingests = _rows.of_run(s, IngestRow, run.id, IngestRow.started_at)
            artifacts = _rows.of_run(s, ArtifactRow, run.id, ArtifactRow.name)
            return {
                "model": model,
                "run": asdict(_rows.run_record(run)),
                "ingests": [_rows.ingest_dict(i) for i in ingests],
                "artifacts": [_rows.artifact_dict(a, self.artifacts_dir) for a in artifacts],
            }
