"""One cycle of the loop: watch the champion, retrain when a trigger fires, decide on evidence.

Reads the served prediction log with the ground truth that came back, monitors its windows,
evaluates the retraining policy and, when a trigger fires, trains a challenger on the clean
table plus the labelled log (all but the newest labelled window), scores champion and
challenger on the same evidence (that window and the challenger's held-out test split),
decides, moves the aliases and records everything as catalog events.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopml.core.errors import LoopError, RegistryError
from loopml.core.labels import match_label
from loopml.core.progress import SILENT, Reporter
from loopml.core.records import LoopCycle, Signals, plain_json, to_plain
from loopml.core.version import VERSION
from loopml.lake import table_name
from loopml.pipeline._alerts import alert

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.records import (
        Decision,
        Evidence,
        ModelBundle,
        ModelVersion,
        TableSample,
        Trigger,
        WindowReport,
    )
    from loopml.pipeline._context import Context
    from loopml.pipeline._run import Trained

KEY = ["_request_id", "_record"]
# a window is known by its first prediction: a row window that grows keeps its start
HISTORY_KEYS = ["window_start", "model_version", "column", "statistic"]


def loop_once(ctx: Context, *, reporter: Reporter = SILENT, now: datetime | None = None
              ) -> LoopCycle:
    """Run one cycle of the loop for the project's model and return what happened."""
    from loopml.loop import triggers

    started = time.monotonic()
    now = now or datetime.now(UTC)
    name = ctx.model_name
    champion_mv = _version(ctx, name, "champion")
    if champion_mv is None:
        raise LoopError(
            f"Model {name!r} has no champion yet, so there is nothing to watch.",
            hint="Run 'loopml run' first: the first model becomes champion.",
        )
    champion = ctx.load_version(champion_mv)
    versions = pinned(ctx, name)  # the cycle reads these versions only: the retrain records them
    served = served_log(ctx, name, versions)
    reporter.start("monitor", total=None)
    reports = monitor_windows(ctx, champion_mv, champion, served)
    signals = gather_signals(ctx, champion_mv, served, reports, now=now)
    fired = triggers(ctx.config.loop, signals)
    reporter.finish("monitor", note=", ".join(dict.fromkeys(t.kind for t in fired)) or "no trigger")
    announce(ctx, champion_mv, signals)
    common = {"model": name, "champion_version": champion_mv.version, "signals": signals,
              "triggers": fired, "windows": len(reports)}
    if not fired:
        return LoopCycle(**common, reason="no trigger fired; the champion stays",
                         seconds=round(time.monotonic() - started, 3))

    from loopml.pipeline._run import test_split_evidence

    evidence_window, training_log = evidence_split(ctx, served)
    clean, extra, sampled = training_frame(ctx, training_log, versions)
    trained, version = retrain(ctx, clean, extra, fired, reporter=reporter,
                               lake_versions=versions, sampled=sampled)
    evidence: list[Evidence] = []
    problem = None
    try:
        if evidence_window is not None:
            evidence.append(window_evidence(ctx, champion, trained.bundle, evidence_window))
        evidence.append(test_split_evidence(ctx, champion, trained))
    except LoopError as exc:  # the two cannot be scored on the same rows: no promotion
        evidence, problem = [], exc.message
    decision = apply_decision(ctx, champion_mv, version, trained, evidence, fired,
                              problem=problem)
    return LoopCycle(
        **common, decision=decision, challenger_version=version.version,
        training_rows=trained.splits.train.height + trained.splits.valid.height,
        reason=decision.reason,
        seconds=round(time.monotonic() - started, 3),
    )


def announce(ctx: Context, champion: ModelVersion, signals: Signals) -> None:
    """Alert on a drift alert or a decay of the champion, whether or not that retrains (once
    per window: a condition that persists is not announced again until a new window shows
    it)."""
    from loopml.loop import triggers

    policy = ctx.config.loop.model_copy(update={"triggers": ("drift", "decay")})
    subject = f"{champion.name}@{champion.version}"
    window = plain_json(signals.window_start)
    told = {(e["payload"].get("event"), (e["payload"].get("evidence") or {}).get("window"))
            for e in ctx.catalog.events(subject=subject, kind="alert", limit=50)}
    for t in triggers(policy, signals):
        if t.kind not in ("drift", "decay") or (t.kind, window) in told:
            continue
        alert(ctx, t.kind, subject, {"reason": t.reason, "window": window,
                                     "trigger": to_plain(t), "signals": to_plain(signals)})


# ---- reading the log -----------------------------------------------------------------------


def pinned(ctx: Context, name: str) -> dict[str, int]:
    """The current version of each table a cycle reads (the clean table, the model's
    prediction log and feedback) that exists."""
    tables = [table_name("clean", ctx.config.problem.source), table_name("predictions", name),
              table_name("feedback", name)]
    found = {t: ctx.lake.version(t) for t in tables}
    return {t: v for t, v in found.items() if v is not None}


def served_log(ctx: Context, name: str, versions: dict[str, int] | None = None
               ) -> pl.DataFrame:
    """Every served (not shadow) prediction of the model, with ``_label`` (null until the
    ground truth arrives) and ``_label_received_at``, ordered by prediction time; the log and
    feedback tables at ``versions`` when given (a table missing there counts as empty)."""
    import polars as pl

    table = table_name("predictions", name)
    at = _versions_of(ctx, versions, table)
    if at is None:
        return pl.DataFrame()
    log = ctx.lake.scan(table, version=at)
    if "_shadow" in log.collect_schema().names():
        log = log.filter(pl.col("_shadow").fill_null(False).not_())
    frame = log.collect()
    feedback = table_name("feedback", name)
    at = _versions_of(ctx, versions, feedback)
    if at is not None:
        labels = ctx.lake.read(feedback, version=at).select([*KEY, "_label",
                                                             "_label_received_at"])
        frame = frame.join(labels, on=KEY, how="left")
    else:
        frame = frame.with_columns(
            pl.lit(None, dtype=frame.schema.get("_prediction", pl.String)).alias("_label"),
            pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("_label_received_at"),
        )
    return frame.sort("_predicted_at", maintain_order=True)


def _versions_of(ctx: Context, versions: dict[str, int] | None, table: str) -> int | None:
    """The version of ``table`` to read: the pinned one, or its latest; None: no table."""
    if versions is not None:
        return versions.get(table)
    return ctx.lake.version(table)


def windows_of(ctx: Context, log: pl.DataFrame) -> list[pl.DataFrame]:
    from loopml.monitor import split_windows

    if log.height == 0:
        return []
    return split_windows(log, ctx.config.monitoring.window)


# ---- monitoring ------------------------------------------------------------------------------


def monitor_windows(
    ctx: Context, champion: ModelVersion, bundle: ModelBundle, served: pl.DataFrame, *,
    every: bool = False,
) -> list[Any]:
    """Check every window of every served version whose rows or labels changed since the
    history recorded it (labels arrive late, so a window is checked again when they do), and
    always the champion's newest and newest labelled windows; upsert their rows into
    ``monitoring/<model>``. Returns the reports of the champion's windows checked, oldest
    first; with ``every``, every window of every version is checked and returned."""
    import polars as pl

    if served.height == 0:
        return []
    from loopml.monitor import check_window, history_rows

    table = table_name("monitoring", champion.name)
    recorded = _recorded_windows(ctx, table)
    reports = []
    for version in sorted(served["_model_version"].unique().to_list()):
        windows = windows_of(ctx, served.filter(pl.col("_model_version") == version))
        wanted = {i for i, w in enumerate(windows)
                  if every or recorded.get((version, _start(w))) != _counts(w)}
        is_champion = version == champion.version
        if is_champion and windows:
            labelled = [i for i, w in enumerate(windows) if w["_label"].is_not_null().any()]
            wanted |= {len(windows) - 1, *labelled[-1:]}
        own = bundle if is_champion else _bundle(ctx, champion.name, version) if wanted else None
        if own is None:
            continue
        for i in sorted(wanted):
            report = check_window(own, windows[i], model=champion.name, version=version,
                                  config=ctx.config.monitoring, metric=champion.metric,
                                  decay_margin=ctx.config.loop.decay_margin,
                                  estimate_tolerance=ctx.config.loop.estimate_tolerance)
            report = with_quality(report, windows[i], own)
            rows = history_rows(report)
            if rows.height:
                ctx.lake.merge(table, rows, keys=HISTORY_KEYS,
                               metadata={"loopml.stage": "monitor"})
            if is_champion or every:
                reports.append(report)
    return reports


def with_quality(report: WindowReport, window: pl.DataFrame, bundle: ModelBundle
                 ) -> WindowReport:
    """``report`` with the window's rows validated against the model's contract (its
    feature columns), as an ingest validates a batch: a quality score, the rules broken, and
    a warning when rows break an ``error`` rule (the server scores values the contract's
    bounds and categories do not hold)."""
    from dataclasses import replace

    from loopml.pipeline._operate import check_served

    found = check_served(window, bundle)
    if found is None:
        return report
    checked, broken = found
    update: dict[str, Any] = {"quality_score": checked.quality_score,
                              "quality": tuple(broken)}
    errors = [v for v in broken if v.severity == "error"]
    if errors:
        shown = ", ".join(f"{v.column} {v.rule} ({v.rows:,})" for v in errors[:5])
        update["status"] = "alert" if report.status == "alert" else "warn"
        update["reasons"] = (*report.reasons, f"{checked.rows_quarantined:,} row(s) "
                             f"break the contract: {shown}")
    return replace(report, **update)


def _recorded_windows(ctx: Context, table: str) -> dict[tuple[int, Any], tuple[int, int]]:
    """(version, window start) -> (rows, labelled rows) as the history last recorded them."""
    import polars as pl

    if not ctx.lake.exists(table):
        return {}
    counts = (
        ctx.lake.scan(table).filter(pl.col("column") == "_window")
        .select("model_version", "window_start", "statistic", "value").collect()
    )
    out: dict[tuple[int, Any], dict[str, float]] = {}
    for r in counts.iter_rows(named=True):
        out.setdefault((r["model_version"], r["window_start"]), {})[r["statistic"]] = r["value"]
    return {k: (int(v.get("rows", -1)), int(v.get("labelled_rows", -1)))
            for k, v in out.items()}


def _start(window: pl.DataFrame) -> Any:
    return window["_predicted_at"].min()


def _counts(window: pl.DataFrame) -> tuple[int, int]:
    return window.height, int(window["_label"].is_not_null().sum())


def _bundle(ctx: Context, name: str, version: int) -> ModelBundle | None:
    try:
        mv = ctx.catalog.model_version(name, version)
    except RegistryError:  # a version no longer in the catalog: nothing to check it with
        return None
    return ctx.load_version(mv)


def _bounds(window: pl.DataFrame) -> tuple[Any, Any]:
    return window["_predicted_at"].min(), window["_predicted_at"].max()


def gather_signals(
    ctx: Context, champion: ModelVersion, served: pl.DataFrame, reports: list[Any], *,
    now: datetime,
) -> Signals:
    """What the triggers look at: the newest window's drift and estimate, the newest labelled
    window's realised metric, concept drift in the errors of the windows checked, time and
    labels since the last training."""
    import polars as pl

    from loopml.evaluate import greater_is_better

    metric = champion.metric
    last = _version(ctx, champion.name, "latest") or champion
    newest = reports[-1] if reports else None
    labelled = [r for r in reports if r.labelled_rows > 0 and metric in r.realised]
    drift = None if newest is None else newest.drift
    new_labels = 0
    if served.height:
        got = served.filter(pl.col("_label").is_not_null())
        new_labels = got.filter(pl.col("_label_received_at") > last.created_at).height
    return Signals(
        model=champion.name, version=champion.version,
        window_start=None if newest is None else newest.start,
        window_end=None if newest is None else newest.end,
        drift_status=None if drift is None else drift.status,
        drifted=() if drift is None else tuple(
            f.name for f in drift.features if f.status == "alert"),
        metric=metric, greater_is_better=greater_is_better(metric),
        realised=labelled[-1].realised[metric] if labelled else None,
        estimated=None if newest is None else newest.estimated.get(metric),
        reference_score=champion.score,
        concept_drift=any(r.concept_drift_at is not None for r in reports),
        seconds_since_training=(now - last.created_at).total_seconds(),
        new_labels=new_labels,
    )


# ---- retraining --------------------------------------------------------------------------------


def evidence_split(ctx: Context, served: pl.DataFrame) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """The newest labelled window's labelled rows (the evidence no model trains on) and the
    labelled rows before it (added to the training set)."""
    import polars as pl

    if served.height == 0:
        return None, served
    windows = windows_of(ctx, served)
    labelled = [w.filter(pl.col("_label").is_not_null()) for w in windows]
    with_labels = [i for i, w in enumerate(labelled) if w.height > 0]
    if not with_labels:
        return None, served.head(0)
    last = with_labels[-1]
    before = [w for w in labelled[:last] if w.height > 0]
    training = pl.concat(before, how="vertical_relaxed") if before else served.head(0)
    return labelled[last], training


def training_frame(ctx: Context, log: pl.DataFrame, versions: dict[str, int] | None = None
                   ) -> tuple[pl.DataFrame, pl.DataFrame, TableSample]:
    """The clean table (split as for every model; at ``versions`` when given; sampled as
    ``loopml run`` samples it beyond ``compute.sample_rows``), the labelled log rows in its
    columns (features, ``_label`` as the target), which join the training split, and where
    the clean rows came from."""
    import polars as pl

    problem = ctx.config.problem
    target = problem.target
    if target is None:
        raise LoopError("A model without a target cannot be retrained on ground truth.")
    table = table_name("clean", problem.source)
    from loopml.pipeline._run import clean_sample

    clean, sampled = clean_sample(ctx, table, version=(versions or {}).get(table))
    columns = [c for c in ctx.contract().names
               if c != target and c not in problem.exclude and c in clean.columns]
    base = clean.select([*columns, target])
    if log.height == 0:
        return base, base.head(0), sampled
    present = [c for c in columns if c in log.columns]
    labels = _as_target(log["_label"], base[target], problem.task)
    extra = log.select(present).with_columns(labels.alias(target))
    extra = extra.with_columns(
        [pl.col(c).cast(base.schema[c], strict=False) for c in present]
        + [pl.lit(None, dtype=base.schema[c]).alias(c) for c in columns if c not in present]
    ).select(base.columns)
    return base, extra, sampled


def _as_target(labels: pl.Series, target: pl.Series, task: str) -> pl.Series:
    """Labels in the clean table's spelling and type (``"yes"`` for ``yes``, ``True`` for
    ``true``), by the one rule that matches labels to classes; numbers for regression."""
    import polars as pl

    if labels.dtype == target.dtype:
        return labels
    if task != "classification":
        return labels.cast(target.dtype, strict=False)
    classes = target.drop_nulls().unique().to_list()
    return pl.Series(labels.name, [match_label(v, classes) for v in labels.to_list()],
                     dtype=target.dtype)


def retrain(ctx: Context, clean: pl.DataFrame, extra: pl.DataFrame, fired: tuple[Trigger, ...],
            *, reporter: Reporter, lake_versions: dict[str, int] | None = None,
            sampled: TableSample | None = None) -> tuple[Trained, ModelVersion]:
    """Train a challenger on the clean table's training split plus the ``extra`` labelled
    rows, with the project's training settings, and register it (alias challenger until the
    decision); one catalog run of kind "retrain", recording the ``lake_versions`` the rows
    came from."""
    from loopml.pipeline._run import register_bundle, run_params, train_model

    catalog, name = ctx.catalog, ctx.model_name
    run_id = catalog.start_run(
        project=name, kind="retrain",
        params={**run_params(ctx.config), "triggers": [t.kind for t in fired]},
        code_version=VERSION,
    )
    try:
        trained = train_model(ctx, clean, run_id=run_id, reporter=reporter, extra=extra,
                              sampled=sampled)
        version = register_bundle(ctx, trained, run_id=run_id)
        catalog.set_alias(name, "challenger", version.version)
        catalog.finish_run(run_id, status="finished", metrics=dict(trained.evaluation.metrics),
                           lake_versions=lake_versions or {},
                           contract_fingerprint=ctx.contract().fingerprint(),
                           git_commit=None)
    except BaseException as exc:
        status = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
        catalog.finish_run(run_id, status=status, metrics={}, lake_versions={},
                           contract_fingerprint=None, git_commit=None)
        raise
    catalog.log_event("retrain", version.ref, {
        "run": run_id, "labelled_rows": extra.height, "split_sizes": trained.splits.sizes,
        "triggers": [to_plain(t) for t in fired], "metric": trained.evaluation.metric,
        "test_score": trained.evaluation.score,
    })
    return trained, version


def window_evidence(ctx: Context, champion: ModelBundle, challenger: ModelBundle,
                    window: pl.DataFrame) -> Evidence:
    """Both models re-scored on the newest labelled window's rows, against the labels."""
    from loopml.evaluate import default_metric
    from loopml.pipeline._evidence import same_rows

    start, end = _bounds(window)
    metric = challenger.evaluation.metric if challenger.evaluation else default_metric(
        challenger.task, ctx.config.training.metric)
    return same_rows(champion, challenger, window, window["_label"].to_list(),
                     name="window", policy=ctx.config.loop, metric=metric, start=start,
                     end=end, seed=ctx.config.training.seed)


def apply_decision(ctx: Context, champion: ModelVersion, version: ModelVersion,
                   trained: Trained, evidence: list[Evidence], fired: tuple[Trigger, ...],
                   *, problem: str | None = None) -> Decision:
    """Decide, move the aliases and record the decision (and a promotion) with its evidence;
    ``problem`` says why there is no evidence, when there is none."""
    from dataclasses import replace

    from loopml.loop import decide

    catalog, name = ctx.catalog, ctx.model_name
    decision = decide(
        evidence, champion_version=champion.version, candidate_version=version.version,
        candidate_score=trained.evaluation.score, min_gain=ctx.config.loop.min_gain,
        triggers=fired,
    )
    if problem is not None:
        decision = replace(decision, reason=f"{decision.reason} ({problem})")
    if decision.promote:
        catalog.set_alias(name, "champion", version.version)
        catalog.delete_alias(name, "challenger")
    catalog.log_event("decision", version.ref, to_plain(decision))
    if decision.promote:
        payload = {"alias": "champion", "by": "loop", "previous": champion.version,
                   "decision": to_plain(decision)}
        catalog.log_event("promote", version.ref, payload)
        alert(ctx, "promote", version.ref, payload)
    return decision


def _version(ctx: Context, name: str, ref: str) -> ModelVersion | None:
    try:
        return ctx.catalog.model_version(name, ref)
    except RegistryError:
        return None


# ---- watching ----------------------------------------------------------------------------------


def watch(
    ctx: Context, *, every_s: float, on_cycle: Any, on_error: Any,
    stop: threading.Event | None = None, reporter: Reporter = SILENT,
) -> int:
    """Run cycles every ``every_s`` seconds until SIGINT or SIGTERM (or ``stop`` is set); a
    cycle that is under way finishes first. A cycle that fails with a ``LoopmlError`` is
    reported through ``on_error`` and the watch goes on. Returns the number of cycles run."""
    import signal

    from loopml.core.errors import LoopmlError

    stop = stop or threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    cycles = 0
    try:
        while not stop.is_set():
            try:
                on_cycle(loop_once(ctx, reporter=reporter))
            except LoopmlError as exc:
                on_error(exc)
            cycles += 1
            stop.wait(every_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return cycles
