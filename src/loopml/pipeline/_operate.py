"""Operating a registered model: batch scoring, the HTTP service and drift monitoring."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.config import FileSource
from loopml.core.contract import ColumnSpec, Contract
from loopml.core.errors import MonitorError, SchemaError, SourceError
from loopml.lake import table_name

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.records import DriftReport, ModelBundle
    from loopml.pipeline._context import Context

logger = logging.getLogger("loopml.serve")  # the server's log

_OUT_FORMATS = (".csv", ".parquet", ".ndjson", ".jsonl")


def predict_file(ctx: Context, data: Path, out: Path, *, model: str | None) -> Path:
    """Score every row of ``data``; rows that break the contract get ``_reasons`` instead of a
    prediction, so the output has exactly the input's rows, in order."""

    from loopml.serve import PredictionLog
    from loopml.sources import read_source

    check_out(out)
    # the scikit-learn form: the compiled one is built for one record at a time (its forests
    # walk every tree level by level, slower than scikit-learn on large batches)
    mv, bundle = ctx.load(model)
    on_every_core(bundle)
    data = data if data.is_absolute() else Path.cwd() / data
    batch = read_source(FileSource(name="predict", path=str(data)), base_dir=data.parent)
    raw = batch.frame
    missing = [c for c in bundle.feature_columns if c not in raw.columns]
    if missing:
        raise SchemaError(
            f"{data.name} lacks the model's feature columns {missing}.",
            hint=f"The model {mv.ref} needs: {', '.join(bundle.feature_columns)}.",
        )
    keys = ["_source_file", "_source_row"]
    out_frame, scored, rejected = score_rows(bundle, raw, keys)
    write_scored(out_frame.drop(keys), out)

    if scored.height:  # one commit, in the layout the server logs
        rows = PredictionLog.rows(
            scored.select(bundle.feature_columns), [scored["_prediction"], scored["_score"]],
            request_id=f"batch-{uuid.uuid4().hex[:12]}", version=mv.version,
            records=scored["_source_row"], ids=_file_ids(ctx, raw, scored, keys),
        )
        ctx.lake.append(table_name("predictions", mv.name), rows,
                        metadata={"loopml.stage": "predict", "loopml.file": str(data)})
    ctx.catalog.log_event(
        "predict", mv.ref, {"file": str(data), "rows": raw.height, "scored": scored.height,
                            "rejected": rejected, "out": str(out)},
    )
    return out


def on_every_core(bundle: ModelBundle) -> None:
    """A batch scoring in this process lets the model's learners predict on every core
    (the search fitted them with one thread each, as a served model keeps)."""
    from loopml.core.cpu import available_threads
    from loopml.train import use_threads

    use_threads(bundle.model, available_threads())


def check_out(out: Path) -> None:
    """A clear error for an output file whose format is not known, before any work."""
    if out.suffix.lower() not in _OUT_FORMATS:
        raise SourceError(
            f"Cannot write predictions to {out.name}: unknown format {out.suffix or '(none)'}.",
            hint=f"Name the output file with one of: {', '.join(_OUT_FORMATS)}.",
        )


def score_rows(bundle: ModelBundle, raw: pl.DataFrame, keys: list[str]
               ) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Batch scoring of ``raw``, whose provenance columns ``keys`` tell its rows apart:
    (``raw`` with ``_prediction``, ``_score`` and ``_reasons`` in ``keys`` order; the scored
    rows' features, keys and outputs; the number of rows refused for their reasons)."""
    from loopml.quality import validate
    from loopml.serve import predict_frame

    checked = validate(raw, _scoring_contract(bundle.contract), drop_duplicates=False)
    scored = predict_frame(bundle, checked.clean.select(list(bundle.feature_columns)))
    scored = scored.with_columns(checked.clean.select(keys))
    reasons = checked.quarantined.select([*keys, "_reasons"])
    out_frame = (
        raw.join(scored.select([*keys, "_prediction", "_score"]), on=keys, how="left")
        .join(reasons, on=keys, how="left")
        .sort(keys)
    )
    return out_frame, scored, checked.quarantined.height


def build_app(ctx: Context, *, model: str | None, metrics_share: Path | None = None) -> Any:
    from loopml.pipeline._feedback import serving_options
    from loopml.serve import PredictionLog, create_app

    mv, bundle = ctx.load(model, serving=True)
    logger.info("Serving %s in its %s form: %s", mv.ref, bundle.serving_form,
                bundle.serving_reason)
    serving = ctx.config.serving
    log = PredictionLog(
        ctx.lake, mv.name, batch_rows=serving.log_batch_rows, flush_s=serving.log_flush_s,
        max_pending_rows=serving.log_max_pending_rows,
        dead_letter_dir=ctx.path(serving.dead_letter_dir),
        check=contract_check(bundle),
    )
    ctx.catalog.log_event("serve", mv.ref, {"host": serving.host, "port": serving.port})
    return create_app(bundle, model_name=mv.name, version=mv.version, log=log,
                      metrics_share=metrics_share,
                      **serving_options(ctx, mv.name, model, current=(mv.version, bundle)))


def check_served(frame: pl.DataFrame, bundle: ModelBundle) -> Any:
    """Served rows validated against the model's contract, as an ingest validates a batch
    (its feature columns present in ``frame``): (the report, the rules broken), or None when
    ``frame`` has no feature column."""
    from loopml.quality import validate

    names = [c for c in bundle.feature_columns if c in frame.columns]
    if not names or frame.height == 0:
        return None
    report = validate(frame.select(names), bundle.contract.select(names),
                      drop_duplicates=False).report
    return report, [v for v in report.violations if v.rows and v.rule != "missing_column"]


def contract_check(bundle: ModelBundle) -> Any:
    """What the prediction log runs on each batch it writes: ``check_served`` against the
    contract of the version served at start, as (column, rule, severity, rows)."""

    def check(frame: pl.DataFrame) -> list[tuple[str, str, str, int]]:
        found = check_served(frame, bundle)
        return [] if found is None else [(v.column, v.rule, v.severity, v.rows)
                                         for v in found[1]]

    return check


def monitor(ctx: Context, *, model: str | None) -> tuple[DriftReport, Path]:
    """Every window of the served prediction log (with the ground truth that came back)
    checked and recorded in ``monitoring/<model>``; returns the drift of the model version's
    newest window and the monitoring report (windows over time with the loop's events).
    Without ``model``, a champion that has served nothing yet (just promoted) gives way to
    the version that served last."""
    import polars as pl

    from loopml.monitor import check_drift
    from loopml.pipeline._loop import monitor_windows, served_log, windows_of
    from loopml.reports import write_report

    mv, bundle = ctx.load(model)
    served = served_log(ctx, mv.name)
    own = served.filter(pl.col("_model_version") == mv.version) if served.height else served
    if own.height == 0 and model is None and served.height:
        # a champion just promoted has served nothing yet: the version that served last
        last = int(served["_model_version"][-1])
        logger.warning("%s has served no prediction yet; monitoring %s@%d, the version that "
                       "served last.", mv.ref, mv.name, last)
        mv = ctx.catalog.model_version(mv.name, last)
        bundle = ctx.load_version(mv)
        own = served.filter(pl.col("_model_version") == mv.version)
    if own.height == 0:
        raise MonitorError(
            f"No predictions have been logged for {mv.ref} yet.",
            hint="Serve the model ('loopml serve') and send requests, or score a file with "
            "'loopml predict', then run 'loopml monitor' again.",
        )
    reports = monitor_windows(ctx, mv, bundle, served, every=True)
    newest = [r for r in reports if r.version == mv.version][-1]
    report = newest.drift or check_drift(
        bundle.reference, windows_of(ctx, own)[-1], model=mv.name, version=mv.version,
        config=ctx.config.monitoring,
    )
    events = [e for e in ctx.catalog.events(limit=1000)
              if e["subject"].split("@")[0] == mv.name
              and e["kind"] in ("decision", "promote", "rollback", "alert", "retrain")]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = write_report(
        reports, ctx.reports_dir / "monitor" / f"{mv.name}-{stamp}.html", events=events,
        title=f"Monitoring of {mv.name}", assets=ctx.reports_dir,
    )
    ctx.catalog.log_event(
        "monitor", mv.ref,
        {"status": report.status, "rows": report.current_rows, "report": str(path),
         "windows": len(reports), "window_start": report.window_start,
         "drifted": [f.name for f in report.features if f.status != "ok"]},
    )
    return report, path


def _file_ids(ctx: Context, raw: pl.DataFrame, scored: pl.DataFrame,
              keys: list[str]) -> pl.Series | None:
    """The id column's value (as text) of each scored row, when the project names one."""
    import polars as pl

    id_column = ctx.config.problem.id_column
    if id_column is None or id_column not in raw.columns:
        return None
    found = scored.select(keys).join(raw.select([*keys, id_column]), on=keys, how="left")
    return found[id_column].cast(pl.String)


def _scoring_contract(contract: Contract) -> Contract:
    """What scoring requires, as the server does: values of the right type. Missing values
    are imputed by the model; new categories and out-of-range values are scored and left to
    drift monitoring rather than refused."""
    return replace(
        contract,
        columns=tuple(ColumnSpec(name=c.name, type=c.type) for c in contract.columns),
    )


def write_scored(frame: pl.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    try:
        if suffix == ".csv":
            frame.write_csv(out)
        elif suffix == ".parquet":
            frame.write_parquet(out)
        else:
            frame.write_ndjson(out)
    except OSError as exc:
        raise SourceError(f"Cannot write {out}: {exc.strerror}.") from exc
