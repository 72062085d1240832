"""One run: ingest -> validate/quarantine -> profile -> split -> train -> evaluate -> register."""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.bundle import save_bundle
from loopml.core.errors import LoopError, TargetError
from loopml.core.labels import positive_label
from loopml.core.progress import Reporter
from loopml.core.records import (
    Decision,
    Evaluation,
    Evidence,
    IngestResult,
    ModelBundle,
    ModelVersion,
    Reference,
    RunResult,
    Splits,
    TableSample,
    TrainResult,
    to_plain,
)
from loopml.core.version import VERSION
from loopml.lake import table_name
from loopml.pipeline._loop import _version

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.config import ProjectConfig
    from loopml.core.records import Profile
    from loopml.pipeline._context import Context


@dataclass(frozen=True, slots=True, kw_only=True)
class Trained:
    """A model fitted and evaluated on a frame: its bundle (with the drift reference), the
    splits it was trained and tested on, and how the search went."""

    bundle: ModelBundle
    evaluation: Evaluation
    splits: Splits
    result: TrainResult


def run(ctx: Context, *, reporter: Reporter) -> RunResult:
    """One run: ingest, profile, train, evaluate, register, decide (the steps below, in order)."""
    started = time.monotonic()
    config, catalog = ctx.config, ctx.catalog
    contract = ctx.contract()
    run_id = catalog.start_run(
        project=config.name, kind="train", params=run_params(config),
        code_version=VERSION,
    )
    try:
        ingests = ingest_all(ctx, run_id=run_id, reporter=reporter)
        clean_ref = ctx.lake.ref(table_name("clean", config.problem.source))
        frame, sampled = clean_sample(ctx, clean_ref.name, version=clean_ref.version)
        reports_dir = ctx.reports_dir / run_id
        reports = validation_reports(ingests, reports_dir)
        reports["profile"] = str(profile_step(ctx, clean_ref.version,
                                              reports_dir / "profile.html", reporter=reporter))
        trained = train_model(ctx, frame, run_id=run_id, reporter=reporter, sampled=sampled)
        del frame  # the splits hold what training needs
        reports["model"] = str(model_report(ctx, trained, reports_dir))
        reporter.start("register", total=None)
        version = register_bundle(ctx, trained, run_id=run_id)
        decision = first_decision(ctx, trained, version)
        version = catalog.model_version(config.name, version.version)
        for path in reports.values():
            catalog.log_artifact(run_id, Path(path), name=Path(path).name, kind="report")
        reporter.finish("register", note=f"{version.ref} -> {decision.alias}")

        lake_versions = {clean_ref.name: clean_ref.version}
        for ing in ingests:
            lake_versions[ing.raw.name] = ing.raw.version
        catalog.finish_run(
            run_id, status="finished", metrics=dict(trained.evaluation.metrics),
            lake_versions=lake_versions, contract_fingerprint=contract.fingerprint(),
            git_commit=_git_commit(ctx.root),
        )
    except BaseException as exc:
        status = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
        catalog.finish_run(run_id, status=status, metrics={}, lake_versions={},
                           contract_fingerprint=contract.fingerprint(), git_commit=None)
        raise
    return RunResult(
        run_id=run_id, ingests=tuple(ingests), leaderboard=trained.result.leaderboard,
        evaluation=trained.evaluation, model_version=version, decision=decision,
        reports=reports, seconds=round(time.monotonic() - started, 3),
        split_sizes=trained.splits.sizes, sampled=sampled,
    )


def clean_sample(ctx: Context, table: str, *, version: int | None = None,
                 config: ProjectConfig | None = None) -> tuple[pl.DataFrame, TableSample]:
    """The clean table at ``version`` as training reads it: whole up to
    ``compute.sample_rows`` rows, else that many rows sampled by row hash with the training
    seed (``config``'s, default the project's), the same rows on every read."""
    from loopml.pipeline._sample import read_sample

    config = config or ctx.config
    return read_sample(ctx.lake, table, version=version, rows=config.compute.sample_rows,
                       seed=config.training.seed)


def run_params(config: ProjectConfig) -> dict[str, Any]:
    """The settings a run records in the catalog: the whole config but ``serving.token``, a
    secret that comes from the environment and is never stored, and with ``loop.webhook``
    stripped of any user, password or query (where webhook tokens live).

    >>> from loopml.core.config import ProjectConfig
    >>> cfg = ProjectConfig.from_dict({"name": "m", "sources": [{"name": "s", "path": "s.csv"}],
    ...                                "problem": {"source": "s"}, "serving": {"token": "t0k"}})
    >>> "token" in run_params(cfg)["serving"], run_params(cfg)["name"]
    (False, 'm')
    """
    from loopml.pipeline._alerts import without_secrets

    params = config.model_dump(mode="json", exclude={"serving": {"token"}})
    if params["loop"]["webhook"]:
        params["loop"]["webhook"] = without_secrets(params["loop"]["webhook"])
    return params


def ingest_all(ctx: Context, *, run_id: str, reporter: Reporter) -> list[IngestResult]:
    """Ingest what is new in every source: one result per committed chunk. A source another
    process is ingesting (``loopml ingest --follow``) is left out: its clean table is used."""
    from loopml.pipeline._ingest import ingest_source

    return ingest_source(ctx, None, reporter=reporter, run_id=run_id, skip_busy=True)


def validation_reports(ingests: list[IngestResult], folder: Path) -> dict[str, str]:
    """One validation report per ingested chunk (``validation-SOURCE``, then ``-2``, ``-3``)."""
    from loopml.reports import write_report

    out: dict[str, str] = {}
    for ing in ingests:
        name = f"validation-{ing.source}"
        n = 1
        while name in out:
            n += 1
            name = f"validation-{ing.source}-{n}"
        out[name] = str(write_report(
            ing.report, folder / f"{name}.html", assets=folder.parent,
            title=f"Validation of {ing.source} (ingest {ing.ingest_id})",
        ))
    return out


def profile_step(ctx: Context, version: int | None, path: Path, *, reporter: Reporter) -> Path:
    """Profile the clean table at ``version`` (default: the latest) into ``path`` (plotly.js
    shared in the project's reports folder when ``path`` is inside it)."""
    from loopml.reports import write_report

    problem = ctx.config.problem
    reporter.start("profile", total=None)
    prof = clean_profile(ctx, version)
    inside = path.resolve().is_relative_to(ctx.reports_dir.resolve())
    path = write_report(prof, path, title=f"Profile of {problem.source}",
                        assets=ctx.reports_dir if inside else None)
    reporter.finish("profile", note=f"{len(prof.columns)} columns")
    return path


def clean_profile(ctx: Context, version: int | None = None) -> Profile:
    """The profile of the problem source's clean table at ``version`` (default: the latest),
    with the source's quarantine counts by reason. The column statistics are computed part
    by part over every row (``summarize_table``: on the Dask workers with
    ``compute.cluster`` set); the sections that need rows use a sample of them
    (``Profile.sampling``)."""
    from loopml.core.records import QuarantineSummary
    from loopml.explore import profile
    from loopml.pipeline._profiling import summarize_table
    from loopml.pipeline._replay import quarantine_summary

    problem = ctx.config.problem
    summary, frame = summarize_table(ctx, table_name("clean", problem.source), version=version)
    held = next(q for q in quarantine_summary(ctx) if q["source"] == problem.source)
    quarantine = QuarantineSummary(table=held["table"], version=held["version"],
                                   rows=held["rows"], by_reason=tuple(held["by_reason"].items()))
    time_column = problem.time_column if problem.time_column in frame.columns else None
    return profile(frame, source=problem.source, target=problem.target, task=problem.task,
                   positive_label=problem.positive_label, time_column=time_column,
                   exclude=problem.exclude, quarantine=quarantine, summary=summary,
                   seed=ctx.config.training.seed)


def profile_clean(ctx: Context, *, output: Path | None, reporter: Reporter) -> Path:
    """``loopml profile``: the profile report of the problem source's clean table as it is
    now, without ingesting or training; written to ``output`` (default:
    ``<reports>/profile/<source>.html``)."""
    source = ctx.config.problem.source
    name = table_name("clean", source)
    if not ctx.lake.exists(name):
        raise LoopError(
            f"Source {source!r} has no clean table yet.",
            hint="Run 'loopml ingest' (or 'loopml run') first.",
        )
    path = Path(output) if output is not None else ctx.reports_dir / "profile" / f"{source}.html"
    return profile_step(ctx, None, path, reporter=reporter)


def champion_specs(ctx: Context) -> list[Any]:
    """The champion's configurations for a new search to try first (``warm_specs``), when
    ``training.warm_start`` is on and the champion's run recorded its search."""
    from loopml.train import warm_specs

    if not ctx.config.training.warm_start or ctx.config.problem.task == "clustering":
        return []
    champion = _version(ctx, ctx.model_name, "champion")
    if champion is None or champion.run_id is None:
        return []
    board = ctx.catalog.leaderboard(champion.run_id)
    return [] if board is None else warm_specs(board)


def train_model(
    ctx: Context, frame: pl.DataFrame, *, run_id: str | None, reporter: Reporter,
    extra: pl.DataFrame | None = None, sampled: TableSample | None = None,
    warm: list[Any] | None = None,
) -> Trained:
    """Split ``frame``, search models within the budget, evaluate the winner on the test split
    once and build its bundle with the drift reference (train + validation rows).

    ``extra`` rows (labelled predictions, in ``frame``'s columns) join the training split
    only: ``frame`` (the clean table) is split exactly as for every other model of the project,
    so all of them share one held-out test split that none trained on. ``sampled`` says
    which rows of the clean table ``frame`` is (``clean_sample``); the evaluation, drift
    reference and bundle record it. ``warm``: the configurations the search tries first
    (default: the champion's, ``champion_specs``)."""
    import polars as pl

    from loopml.evaluate import evaluate
    from loopml.train import split, train

    config, problem = ctx.config, ctx.config.problem
    contract = ctx.contract()
    cleaning = config.source(problem.source).cleaning
    target = problem.target
    frame = _usable(frame, target)
    positive = _positive_label(frame, target, problem.task, problem.positive_label)
    splits = split(
        frame, target=target, task=problem.task, time_column=problem.time_column,
        valid_size=config.training.valid_size, test_size=config.training.test_size,
        seed=config.training.seed,
    )
    if extra is not None and extra.height:
        train_rows = pl.concat([splits.train, _usable(extra, target).select(splits.train.columns)],
                               how="vertical_relaxed")
        splits = replace(splits, train=train_rows)
    columns = [
        c for c in contract.names
        if c != target and c not in problem.exclude and c in frame.columns
    ]
    from loopml.pipeline._train_cluster import log_training, shared_search

    with shared_search(ctx, run_id) as shared:  # None: in this process
        result = train(
            splits, contract=contract, columns=columns, task=problem.task, target=target,
            config=config.training, positive_label=positive, group_column=problem.group_column,
            reporter=reporter, shared=shared,
            warm=champion_specs(ctx) if warm is None else warm,
        )
    if run_id is not None:
        ctx.catalog.log_leaderboard(run_id, result.leaderboard)
        log_training(ctx, run_id, result)

    reporter.start("evaluate", total=None)
    evaluation = evaluate(  # the test split, scored once
        result.model, splits.test, task=problem.task, target=target,
        metric=result.leaderboard.metric, positive_label=positive,
    )
    evaluation = replace(evaluation, sampled=sampled)
    reporter.finish("evaluate", note=f"{evaluation.metric} {evaluation.score:.4f}")
    kept = list(result.feature_columns)  # the search may drop useless columns
    bundle = ModelBundle(
        model=result.model, contract=contract.select(kept), task=problem.task,
        target=target, feature_columns=tuple(kept), classes=result.classes,
        positive_label=positive, reference=Reference(features=()), evaluation=evaluation,
        cleaning=None if cleaning is None else cleaning.recorded(), trained_on=sampled,
    )
    bundle = with_reference(ctx, bundle, splits)
    return Trained(bundle=bundle, evaluation=evaluation, splits=splits, result=result)


def with_reference(ctx: Context, bundle: ModelBundle, splits: Splits) -> ModelBundle:
    """The bundle with its drift reference: the training rows' distributions, the
    distribution of what the server logs for them (``_score``, or the cluster id) and, for a
    classifier, the calibration of its scores on the held-out test rows (what the label-free
    performance estimate reads)."""
    import polars as pl

    from loopml.monitor import build_calibration, build_reference
    from loopml.serve import predict_frame

    columns = list(bundle.feature_columns)
    outputs = predict_frame(bundle, splits.test.select(columns))
    output = outputs["_prediction"].cast(pl.String) if bundle.task == "clustering" else (
        outputs["_score"]
    )
    monitoring = ctx.config.monitoring
    reference = build_reference(
        pl.concat([splits.train, splits.valid], how="vertical_relaxed"), ctx.contract(),
        columns=columns, predictions=output, bins=monitoring.bins,
        sample_rows=monitoring.domain_rows, seed=ctx.config.training.seed,
    )
    reference = replace(reference, sampled=bundle.trained_on)
    if bundle.task == "classification" and bundle.target is not None and outputs.height >= 2:
        labels = splits.test[bundle.target].to_list()
        calibration = build_calibration(
            outputs["_score"].to_list(), labels, bundle.positive_label,
            predictions=outputs["_prediction"].to_list(),
        )
        reference = replace(reference, calibration=calibration)
    return replace(bundle, reference=reference)


def model_report(ctx: Context, trained: Trained, folder: Path) -> Path:
    from loopml.reports import write_report

    problem = ctx.config.problem
    return write_report(
        trained.evaluation, folder / "model.html", leaderboard=trained.result.leaderboard,
        assets=ctx.reports_dir,
        title=f"Model {ctx.config.name}: {problem.task} of {problem.target or 'clusters'}",
    )


def register_bundle(ctx: Context, trained: Trained, *, run_id: str | None) -> ModelVersion:
    """Save the bundle with its serving form and register it as the model's next version
    (no alias yet); the serving form's record is also a catalog event."""
    evaluation = trained.evaluation
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_bundle(trained.bundle, Path(tmp) / "bundle")
        record = write_serving_form(trained, folder)
        mv = ctx.catalog.register_model(
            ctx.config.name, folder, run_id=run_id, task=trained.bundle.task,
            metric=evaluation.metric, score=evaluation.score,
            metrics={k: v for k, v in evaluation.metrics.items() if v == v},
        )
    ctx.catalog.log_event("serving_form", mv.ref, record)
    if trained.bundle.trained_on is not None:  # what 'loopml lineage' says it trained on
        ctx.catalog.log_event("trained_on", mv.ref, to_plain(trained.bundle.trained_on))
    return mv


PARITY_ROWS = 2_000  # held-out rows the compiled form is checked on at most


def write_serving_form(trained: Trained, folder: Path) -> dict[str, Any]:
    """Compile the model, check it against the scikit-learn model on the held-out test rows
    and write ``serving.json`` (and ``compiled/`` when it agrees) into the bundle folder."""
    import json

    from loopml.core.bundle import COMPILED_DIR, SERVING_FILE
    from loopml.train import serving_form

    bundle = trained.bundle
    rows = trained.splits.test.select(list(bundle.feature_columns)).head(PARITY_ROWS)
    record = serving_form(bundle.model, rows, folder / COMPILED_DIR)
    (folder / SERVING_FILE).write_text(json.dumps(record, indent=1))
    return record


def first_decision(ctx: Context, trained: Trained, version: ModelVersion) -> Decision:
    """Champion or challenger for a version that ``run`` registered, by the loop's rule: the
    current champion is loaded (verified) and re-scored on the new model's test split, and the
    new model is promoted only when it wins there by more than ``loop.min_gain`` with a paired
    bootstrap interval above zero. Sets the alias and logs the decision."""
    from loopml.loop import decide

    catalog, name = ctx.catalog, ctx.config.name
    champion = _version(ctx, name, "champion")
    evidence = []
    problem = None
    if champion is not None and trained.bundle.task != "clustering":
        try:
            evidence.append(test_split_evidence(ctx, ctx.load_version(champion), trained))
        except LoopError as exc:  # e.g. the champion needs columns the new data lacks
            problem = exc.message
    decision = decide(
        evidence, champion_version=None if champion is None else champion.version,
        candidate_version=version.version, candidate_score=trained.evaluation.score,
        min_gain=ctx.config.loop.min_gain,
    )
    if problem is not None:
        decision = replace(decision, reason=f"{decision.reason} ({problem})")
    if champion is not None and trained.bundle.task == "clustering":
        decision = replace(decision, reason=(
            f"clustering models have no ground truth to be compared on; champion "
            f"v{champion.version} stays (promote by hand with 'loopml promote')"))
    catalog.set_alias(name, decision.alias, version.version)
    catalog.log_event("decision", f"{name}@{version.version}", to_plain(decision))
    return decision


def test_split_evidence(ctx: Context, champion: ModelBundle, trained: Trained) -> Evidence:
    """Champion and the new model on the new model's held-out test split."""
    from loopml.pipeline._evidence import same_rows

    test = trained.splits.test
    return same_rows(
        champion, trained.bundle, test, test[ctx.config.problem.target].to_list(),
        name="test split", policy=ctx.config.loop, metric=trained.evaluation.metric,
        seed=ctx.config.training.seed,
    )


def _usable(frame: pl.DataFrame, target: str | None) -> pl.DataFrame:
    if target is None:
        return frame
    if target not in frame.columns:
        raise TargetError(
            f"The clean table has no target column {target!r}.",
            hint="The contract and the project file disagree; re-run 'loopml init'.",
        )
    return frame.filter(frame[target].is_not_null())


def _positive_label(frame: pl.DataFrame, target: str | None, task: str, configured: Any) -> Any:
    """The one rule (``loopml.core.labels``) over the classes and their counts, as explore."""
    if task != "classification" or target is None:
        return None
    counts = frame[target].drop_nulls().value_counts()
    return positive_label(counts[target].to_list(), configured, counts=counts["count"].to_list())


def _git_commit(folder: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None
