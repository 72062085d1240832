"""One run: ingest -> validate/quarantine -> profile -> split -> train -> evaluate -> register."""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.bundle import save_bundle
from loopml.core.errors import TargetError
from loopml.core.labels import positive_label
from loopml.core.progress import Reporter
from loopml.core.version import VERSION
from loopml.core.records import IngestResult, ModelBundle, Reference, RunResult, to_plain
from loopml.lake import table_name

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.config import ProjectConfig
    from loopml.pipeline._project import Project


def run(project: Project, config: ProjectConfig, *, reporter: Reporter) -> RunResult:
    import polars as pl

    from loopml.evaluate import evaluate
    from loopml.explore import profile
    from loopml.features import build_features
    from loopml.loop import decide
    from loopml.monitor import build_reference
    from loopml.reports import write_report
    from loopml.serve import predict_frame
    from loopml.train import split, train

    started = time.monotonic()
    catalog = project.catalog
    problem = config.problem
    source = config.source(problem.source)
    contract = project.contract(source.name)
    run_id = catalog.start_run(
        project=config.name, kind="train", params=config.model_dump(mode="json"),
        code_version=VERSION,
    )
    try:
        ingests: list[IngestResult] = []
        for src in config.sources:
            result = project.ingest(src.name, reporter=reporter, run_id=run_id)
            if result is not None:
                ingests.append(result)
        clean_ref = project.lake.ref(table_name("clean", source.name))
        frame = project.lake.read(clean_ref.name, version=clean_ref.version)
        reports_dir = project.reports_dir / run_id
        reports: dict[str, str] = {}
        for ing in ingests:
            path = write_report(ing.report, reports_dir / f"validation-{ing.source}.html",
                                title=f"Validation of {ing.source} (ingest {ing.ingest_id})")
            reports[f"validation-{ing.source}"] = str(path)

        reporter.start("profile", total=None)
        prof = profile(frame, source=source.name, target=problem.target, task=problem.task,
                       positive_label=problem.positive_label)
        reports["profile"] = str(write_report(prof, reports_dir / "profile.html",
                                              title=f"Profile of {source.name}"))
        reporter.finish("profile", note=f"{len(prof.columns)} columns")

        target = problem.target
        frame = _usable(frame, target)
        positive = _positive_label(frame, target, problem.task, problem.positive_label)
        splits = split(
            frame, target=target, task=problem.task, time_column=problem.time_column,
            valid_size=config.training.valid_size, test_size=config.training.test_size,
            seed=config.training.seed,
        )
        columns = [
            c for c in contract.names
            if c != target and c not in problem.exclude and c in frame.columns
        ]
        features = build_features(contract, columns=columns, task=problem.task)
        result = train(
            splits, features=features, task=problem.task, target=target,
            config=config.training, positive_label=positive, reporter=reporter,
        )
        catalog.log_candidates(run_id, result.leaderboard.candidates)

        reporter.start("evaluate", total=None)
        evaluation = evaluate(  # the test split, scored once
            result.model, splits.test, task=problem.task, target=target,
            metric=result.leaderboard.metric, positive_label=positive,
        )
        reporter.finish("evaluate", note=f"{evaluation.metric} {evaluation.score:.4f}")
        reports["model"] = str(write_report(
            evaluation, reports_dir / "model.html", leaderboard=result.leaderboard,
            title=f"Model {config.name}: {problem.task} of {target or 'clusters'}",
        ))

        reporter.start("register", total=None)
        bundle = ModelBundle(
            model=result.model, contract=contract.select(columns), task=problem.task,
            target=target, feature_columns=tuple(columns), classes=result.classes,
            positive_label=positive, reference=Reference(features=()), evaluation=evaluation,
        )
        # prediction drift is watched on what the server logs: _score, or the cluster id
        outputs = predict_frame(bundle, splits.test.select(columns))
        output = outputs["_prediction"].cast(pl.String) if problem.task == "clustering" else (
            outputs["_score"]
        )
        reference = build_reference(
            pl.concat([splits.train, splits.valid], how="vertical_relaxed"), contract,
            columns=columns, predictions=output, bins=config.monitoring.bins,
        )
        bundle = replace(bundle, reference=reference)
        champion = _current_champion(catalog, config.name)
        with tempfile.TemporaryDirectory() as tmp:
            folder = save_bundle(bundle, Path(tmp) / "bundle")
            version = catalog.register_model(
                config.name, folder, run_id=run_id, task=problem.task,
                metric=evaluation.metric, score=evaluation.score,
                metrics={k: v for k, v in evaluation.metrics.items() if v == v},
            )
        decision = decide(evaluation, champion)
        catalog.set_alias(config.name, decision.alias, version.version)
        catalog.log_event("decision", f"{config.name}@{version.version}", to_plain(decision))
        version = catalog.model_version(config.name, version.version)
        for name, path in reports.items():
            catalog.log_artifact(run_id, Path(path), name=Path(path).name, kind="report")
        reporter.finish("register", note=f"{version.ref} -> {decision.alias}")

        lake_versions = {clean_ref.name: clean_ref.version}
        for ing in ingests:
            lake_versions[ing.raw.name] = ing.raw.version
        catalog.finish_run(
            run_id, status="finished", metrics=dict(evaluation.metrics),
            lake_versions=lake_versions, contract_fingerprint=contract.fingerprint(),
            git_commit=_git_commit(project.root),
        )
    except BaseException as exc:
        status = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
        catalog.finish_run(run_id, status=status, metrics={}, lake_versions={},
                           contract_fingerprint=contract.fingerprint(), git_commit=None)
        raise
    return RunResult(
        run_id=run_id, ingests=tuple(ingests), leaderboard=result.leaderboard,
        evaluation=evaluation, model_version=version, decision=decision, reports=reports,
        seconds=round(time.monotonic() - started, 3), split_sizes=splits.sizes,
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


def _current_champion(catalog: Any, name: str) -> Any:
    from loopml.core.errors import RegistryError

    try:
        return catalog.model_version(name, "champion")
    except RegistryError:
        return None


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
