"""``Project``: the Python API over a project folder. The CLI is a thin layer over it."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.config import PROJECT_FILE, ProjectConfig
from loopml.core.contract import Contract
from loopml.core.errors import NotAProjectError
from loopml.core.progress import SILENT, Reporter

if TYPE_CHECKING:
    import threading

    from loopml.core.records import (
        CheckReport,
        DriftReport,
        FeedbackResult,
        IngestResult,
        LoopCycle,
        ModelVersion,
        Revalidated,
        RunResult,
    )
    from loopml.lake import Lake, OptimizeResult
    from loopml.pipeline._context import Context
    from loopml.pipeline._deploy import DockerContext
    from loopml.pipeline._reproduce import Reproduction
    from loopml.registry import Catalog


class Project:
    """A loopml project: ``loopml.yaml``, its contracts and its state folder ``.loopml/``.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "data.csv").write_text("x,y\\n" + "".join(f"{i},{i % 2}\\n" for i in range(40)))
    >>> project = Project.init(d / "data.csv", target="y", directory=d)
    >>> project.config.problem.task
    'classification'
    """

    def __init__(self, path: str | Path = PROJECT_FILE, *, env: dict[str, str] | None = None):
        path = Path(path)
        if path.is_dir():
            path = path / PROJECT_FILE
        self.file = path.resolve()
        self.root = self.file.parent
        self.config = ProjectConfig.load(self.file, env=env)
        self._catalog: Catalog | None = None

    def __repr__(self) -> str:
        return f"Project({str(self.file)!r})"

    # ---- creating -----------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        data: str | Path,
        *,
        target: str | None = None,
        task: str = "auto",
        time_column: str | None = None,
        exclude: tuple[str, ...] | list[str] = (),
        directory: str | Path = ".",
        name: str | None = None,
        force: bool = False,
        training: dict[str, Any] | None = None,
        table: str | None = None,
        query: str | None = None,
        watermark: str | None = None,
    ) -> Project:
        """Create a project from a data file, folder or glob (or a database URL with a
        ``table`` or ``query``) and a target column."""
        from loopml.pipeline._init import create_project

        _, _, file = create_project(
            data, target=target, task=task, time_column=time_column, exclude=tuple(exclude),
            directory=directory, name=name, force=force, training=training, table=table,
            query=query, watermark=watermark,
        )
        return cls(file)

    @classmethod
    def find(cls, start: str | Path = ".") -> Project:
        """The project whose ``loopml.yaml`` is in ``start`` or a folder above it."""
        here = Path(start).resolve()
        for folder in (here, *here.parents):
            if (folder / PROJECT_FILE).exists():
                return cls(folder / PROJECT_FILE)
        raise NotAProjectError(
            f"No {PROJECT_FILE} in {here} or any folder above it.",
            hint="Run 'loopml init DATA --target COLUMN' to create a project here, "
            "or 'cd' into a project folder.",
        )

    # ---- storage ------------------------------------------------------------------------

    def path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.root / p

    @functools.cached_property
    def lake(self) -> Lake:
        from loopml.lake import Lake, storage_options

        storage = self.config.storage
        uri = storage.lake_uri
        return Lake(uri if "://" in uri else self.path(uri),
                    storage_options=storage_options(storage.storage_options) or None)

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            from loopml.registry import Catalog

            self._catalog = Catalog(
                self.config.storage.catalog_url,
                self.config.storage.artifacts_uri,
                base_dir=self.root,
            )
        return self._catalog

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def contract(self, source: str | None = None) -> Contract:
        name = self.config.source(source).name
        return Contract.load(self.root / "contracts" / f"{name}.yaml")

    @property
    def context(self) -> Context:
        """What the pipeline's steps take: config, lake, catalog, contracts, model loading."""
        from loopml.pipeline._context import Context

        folder = self.root / "contracts"
        contracts = {
            s.name: Contract.load(folder / f"{s.name}.yaml")
            for s in self.config.sources
            if (folder / f"{s.name}.yaml").exists()
        }
        return Context(config=self.config, lake=self.lake, catalog=self.catalog,
                       contracts=contracts, root=self.root)

    @property
    def reports_dir(self) -> Path:
        return self.path(self.config.storage.reports_dir)

    @property
    def model_name(self) -> str:
        return self.config.name

    # ---- the loop -----------------------------------------------------------------------

    def ingest(
        self,
        source: str | None = None,
        *,
        follow: bool = False,
        stop: threading.Event | None = None,
        reporter: Reporter = SILENT,
        run_id: str | None = None,
    ) -> list[IngestResult]:
        """Ingest what is new in a source (default: every source) into the lake: raw, clean
        and quarantine tables, one crash-safe commit per chunk."""
        from loopml.pipeline._ingest import ingest_source

        return ingest_source(self.context, source, follow=follow, stop=stop,
                             reporter=reporter, run_id=run_id)

    def sources(self) -> list[dict[str, Any]]:
        """Each source with its kind, cursor and last ingest's counts."""
        from loopml.pipeline._replay import sources_status

        return sources_status(self.context)

    def quarantine(self) -> list[dict[str, Any]]:
        """Per source: quarantined rows, by reason."""
        from loopml.pipeline._replay import quarantine_summary

        return quarantine_summary(self.context)

    def quarantined(self, source: str, *, reason: str | None = None, limit: int = 20) -> Any:
        """Quarantined rows of a source (a Polars frame)."""
        from loopml.pipeline._replay import quarantine_rows

        return quarantine_rows(self.context, source, reason=reason, limit=limit)

    def profile(self, *, output: Path | None = None, reporter: Reporter = SILENT,
                cluster: str | None = None) -> Path:
        """Profile the problem source's clean table (with its quarantine by reason) into one
        HTML report, ``.loopml/reports/profile/<source>.html`` by default; returns its path.
        The column statistics are computed part by part (on ``cluster`` or
        ``compute.cluster`` when set) over every row."""
        from loopml.pipeline._run import profile_clean

        return profile_clean(self.compute_context(cluster), output=output, reporter=reporter)

    def replay(self, source: str) -> dict[str, Any]:
        """Re-validate a source's quarantine against the current contract."""
        from loopml.pipeline._replay import replay

        return replay(self.context, source)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Per model: the prediction rows its servers could not log, in the dead-letter file
        and table, with how many of the file's rows are still to replay."""
        from loopml.pipeline._deadletters import dead_letters

        return dead_letters(self.context)

    def replay_dead_letters(self, model: str | None = None) -> list[dict[str, Any]]:
        """Append the dead-letter files' rows back to the prediction logs, each batch once."""
        from loopml.pipeline._deadletters import replay_dead_letters

        return replay_dead_letters(self.context, model)

    def run(self, *, time_budget: int | None = None, deterministic: bool | None = None,
            cluster: str | None = None, reporter: Reporter = SILENT) -> RunResult:
        """Ingest, validate, profile, split, train, evaluate and register: one run.
        ``time_budget`` and ``deterministic`` override ``training`` for this run (the run's
        recorded params hold the values used); ``cluster`` (``local`` or a Dask scheduler's
        address) overrides ``compute.cluster``: on a cluster the search's trials run on the
        workers and LightGBM / XGBoost final fits use ``lightgbm.dask`` / ``xgboost.dask``."""
        from dataclasses import replace

        from loopml.pipeline._cluster import require_shared_catalog
        from loopml.pipeline._run import run
        from loopml.pipeline._train_cluster import warm_up

        ctx = self.compute_context(cluster)
        require_shared_catalog(ctx.config)  # before anything is ingested
        warm_up(ctx)  # the workers import while this process ingests and profiles
        update: dict[str, Any] = {}
        if time_budget is not None:
            update["time_budget_s"] = time_budget
        if deterministic is not None:
            update["deterministic"] = deterministic
        if update:
            config = ctx.config
            training = config.training.model_copy(update=update)
            ctx = replace(ctx, config=config.model_copy(update={"training": training}))
        return run(ctx, reporter=reporter)

    def reproduce(self, ref: str, *, reporter: Reporter = SILENT) -> Reproduction:
        """Rebuild a registered model from its run's lake version, contract, config and seed;
        says whether its test-split predictions equal the original's (a catalog event too)."""
        from loopml.pipeline._reproduce import reproduce

        return reproduce(self.context, ref, reporter=reporter)

    def models(self) -> list[ModelVersion]:
        """Every registered version of every model, with aliases and metrics."""
        return self.catalog.model_versions()

    def promote(self, name: str, version: int, *, alias: str = "champion") -> ModelVersion:
        """Point ``alias`` (default champion) at a model version by hand."""
        self.catalog.model_version(name, version)  # raises for an unknown version
        self.catalog.set_alias(name, alias, version)
        self.catalog.log_event("promote", f"{name}@{version}", {"alias": alias, "by": "user"})
        return self.catalog.model_version(name, version)

    def load(self, ref: str | None = None) -> tuple[ModelVersion, Any]:
        """A registered model version and its verified bundle (``NAME@ALIAS`` or ``NAME@N``)."""
        return self.context.load(ref)

    def predict(self, data: str | Path | None, out: str | Path, *, model: str | None = None,
                table: str | None = None, version: int | None = None,
                cluster: str | None = None) -> Path:
        """Score a file, or a lake ``table`` (at ``version``; part by part, on ``cluster``
        or ``compute.cluster`` when set), and write it with ``_prediction``, ``_score`` and
        ``_reasons`` columns."""
        from loopml.core.errors import ConfigError
        from loopml.pipeline._operate import predict_file

        if (data is None) == (table is None):
            raise ConfigError("Name one thing to score: a file or a lake table.",
                              hint="loopml predict FILE --out OUT, or loopml predict --table "
                              "clean/SOURCE --out OUT.")
        if data is not None:
            return predict_file(self.context, Path(data), Path(out), model=model)
        from loopml.pipeline._tables import score_table

        assert table is not None
        return score_table(self.compute_context(cluster), table, Path(out), version=version,
                           model=model)

    def validate(self, source: str | None = None, *, version: int | None = None,
                 cluster: str | None = None) -> Revalidated:
        """Validate a source's clean table (at ``version``) again against its current
        contract, part by part (on ``cluster`` or ``compute.cluster`` when set); nothing is
        written but a catalog event."""
        from loopml.pipeline._tables import revalidate

        return revalidate(self.compute_context(cluster), source, version=version)

    def compute_context(self, cluster: str | None = None) -> Context:
        """The context with ``compute.cluster`` set to ``cluster`` (``local`` or a scheduler
        address) when given."""
        from dataclasses import replace

        from pydantic import ValidationError

        from loopml.core.config import ComputeConfig
        from loopml.core.errors import ConfigError

        ctx = self.context
        if cluster is None:
            return ctx
        try:
            compute = ComputeConfig(**{**ctx.config.compute.model_dump(), "cluster": cluster})
        except ValidationError as exc:
            raise ConfigError(f"--cluster {cluster}: {exc.errors()[0]['msg']}",
                              hint="Give 'local' or a scheduler address such as "
                              "tcp://scheduler:8786.") from None
        return replace(ctx, config=ctx.config.model_copy(update={"compute": compute}))

    def app(self, *, model: str | None = None, metrics_share: Path | None = None) -> Any:
        """The FastAPI app serving a model version; predictions are logged to the lake.
        ``metrics_share``: a folder the worker processes of one server share their counters
        in, so that ``/metrics`` shows the server's totals whichever worker answers."""
        from loopml.pipeline._operate import build_app

        return build_app(self.context, model=model, metrics_share=metrics_share)

    def serve(self, *, model: str | None = None, host: str | None = None,
              port: int | None = None, workers: int | None = None) -> None:
        """Serve a model over HTTP until interrupted (SIGINT/SIGTERM flush the log); with
        ``workers`` above 1 (default ``serving.workers``), that many processes share the
        port, each following the alias and logging to the same table."""
        from loopml.serve import run_server

        serving = self.config.serving
        workers = serving.workers if workers is None else workers
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        where = {"host": host or serving.host, "port": serving.port if port is None else port,
                 "log_format": serving.log_format}
        if workers <= 1:
            run_server(self.app(model=model), **where)
            return
        from loopml.pipeline._workers import worker_environment

        self.catalog  # noqa: B018 - a new catalog is made here once, not by every worker
        import shutil
        import tempfile

        share = tempfile.mkdtemp(prefix="loopml-metrics-")
        os.environ.update(worker_environment(self.file, model, serving.log_format,
                                             workers, metrics_share=share))
        try:
            run_server("loopml.pipeline._workers:app", workers=workers, **where)
        finally:
            shutil.rmtree(share, ignore_errors=True)

    def deploy_docker(self, out: str | Path | None = None, *, model: str | None = None,
                      image: str | None = None) -> DockerContext:
        """Write a Docker build context (Dockerfile, compose file with PostgreSQL, pinned
        requirements, the model bundle) that serves ``model`` (default: the champion) to
        ``out`` (default ``deploy/docker`` in the project)."""
        from loopml.pipeline._deploy import write_docker_context

        folder = self.path("deploy/docker") if out is None else Path(out)
        return write_docker_context(self, folder, model=model, image=image)

    def install_model(self, bundle: str | Path, *, alias: str | None = None) -> ModelVersion:
        """Register a model bundle (the ``model/`` folder of a deploy context) in this
        project's catalog after checking every file's sha256; installing it again finds the
        version already there."""
        return self.catalog.install_model(Path(bundle), alias=alias)

    def feedback(self, data: str | Path, *, model: str | None = None) -> FeedbackResult:
        """Send ground truth from a file (CSV, Parquet or NDJSON with ``label`` and
        ``request_id``+``record`` or the id column) into the lake table ``feedback/<model>``."""
        from loopml.pipeline._feedback import feedback_file

        return feedback_file(self.context, Path(data), model=model)

    def lineage(self, request_id: str, *, model: str | None = None) -> dict[str, Any]:
        """The lineage of the prediction with this request id: the rows it scored, the model
        version, its run, lake versions and contract, and the ingests behind them."""
        from loopml.pipeline._lineage import request_lineage
        from loopml.registry import parse_model_ref

        ctx = self.context
        name = parse_model_ref(model)[0] if model else ctx.model_name
        return request_lineage(ctx.lake, ctx.catalog, name, request_id)

    def monitor(self, *, model: str | None = None) -> tuple[DriftReport, Path]:
        """Drift of logged predictions against the training data; writes an HTML report."""
        from loopml.pipeline._operate import monitor

        return monitor(self.context, model=model)

    def write_ci(self, *, force: bool = False) -> Path:
        """Write a GitHub Actions workflow running ``loopml run`` then ``loopml check``."""
        from loopml.pipeline._init import write_ci_workflow

        return write_ci_workflow(self.root, force=force)

    def loop_once(self, *, reporter: Reporter = SILENT) -> LoopCycle:
        """One cycle of the loop: monitor, check the triggers, retrain and decide if one fires."""
        from loopml.pipeline._loop import loop_once

        return loop_once(self.context, reporter=reporter)

    def watch(self, *, every_s: float | None = None, on_cycle: Any, on_error: Any,
              reporter: Reporter = SILENT) -> int:
        """Run loop cycles every ``every_s`` seconds (default ``loop.every``) until SIGINT or
        SIGTERM; returns the number of cycles."""
        from loopml.core.config import duration_s
        from loopml.pipeline._loop import watch

        every = duration_s(self.config.loop.every) if every_s is None else every_s
        return watch(self.context, every_s=every, on_cycle=on_cycle, on_error=on_error,
                     reporter=reporter)

    def rollback(self, name: str | None = None) -> tuple[ModelVersion, int]:
        """Restore the previous champion; returns it and the version it replaced."""
        from loopml.pipeline._rollback import rollback

        return rollback(self.context, name)

    def optimize_lake(
        self, table: str | None = None, *, retention_hours: int | None = None
    ) -> list[OptimizeResult]:
        """Compact and vacuum one lake table or all of them (``loopml lake optimize``); each
        is an ``optimize`` event in the catalog with its counts."""
        from loopml.pipeline._lakeops import optimize_lake

        return optimize_lake(self.context, table, retention_hours=retention_hours)

    def events(self, *, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Catalog events, newest first (decisions carry their evidence)."""
        return self.catalog.events(kind=kind, limit=limit)

    def check(self) -> CheckReport:
        """The CI gate: the newest model against the champion's evidence and the floors."""
        from loopml.pipeline._check import check

        return check(self.context)
