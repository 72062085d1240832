"""Whole lake tables, one Parquet file at a time: validation against the source's contract
and batch scoring, in this process or on the workers of a Dask cluster (``_cluster``). Each
part's result is merged in table order, so where the parts ran changes nothing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.contract import PROVENANCE_COLUMNS
from loopml.lake import table_name
from loopml.pipeline._cluster import connect, map_parts

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.contract import Contract
    from loopml.core.records import ModelBundle, Revalidated, TablePart, ValidationReport
    from loopml.pipeline._context import Context

_AT = "_source_row"  # a part's rows numbered by their table position while they are scored


def revalidate(ctx: Context, source: str | None = None, *,
               version: int | None = None) -> Revalidated:
    """The clean table of ``source`` (default: the problem's) at ``version`` (default: the
    latest) validated again against the source's current contract, part by part, and the
    parts' reports merged. The rules about a row (types, bounds, categories, patterns, rules
    over columns) give the same counts and reasons as over the whole table at once; the
    rules about a batch (null rates, uniqueness, the key, duplicates) judged each ingested
    chunk when it came, and are not judged again here. The merged report is also written
    as HTML under ``reports/validate/``; nothing else is written but a catalog event."""
    from loopml.core.records import Revalidated, TableRef
    from loopml.reports import write_report

    src = ctx.config.source(source)
    contract = ctx.contract(src.name)
    table = table_name("clean", src.name)
    with connect(ctx.config) as client:
        parts = ctx.lake.parts(table, version=version)
        found = map_parts(client, ctx.lake, parts, _validate_part, contract)
    report = _merged([r for r, _ in found], contract)
    quarantined = _concat([q for _, q in found])
    at = parts[0].version if parts else ctx.lake.ref(table).version
    path = write_report(report, ctx.reports_dir / "validate" / f"{src.name}-v{at}.html",
                        assets=ctx.reports_dir, title=f"Validation of {table} at version {at}")
    done = Revalidated(table=TableRef(name=table, version=at), report=report,
                       quarantined=quarantined, parts=len(parts),
                       cluster=ctx.config.compute.cluster, path=str(path))
    ctx.catalog.log_event("validate", f"{table}@{at}", {
        "rows": report.rows_in, "quarantined": report.rows_quarantined, "parts": len(parts),
        "contract": report.contract_fingerprint, "cluster": done.cluster, "report": done.path})
    return done


def score_table(ctx: Context, table: str, out: Path, *, version: int | None = None,
                model: str | None = None) -> Path:
    """Score every row of a lake table version (``clean/flights``, or its SQL name
    ``clean_flights``) part by part, as ``loopml predict`` scores a file: the table's rows in
    order with ``_prediction``, ``_score`` and ``_reasons``, written to ``out``, and the
    scored rows logged to ``predictions/<model>`` in one commit (``_record`` is the row's
    position in the table)."""
    import polars as pl

    from loopml.pipeline._operate import check_out, write_scored
    from loopml.serve import PredictionLog

    check_out(out)
    with connect(ctx.config) as client:
        name = ctx.lake.table(table)
        mv, bundle = ctx.load(model)
        parts = ctx.lake.parts(name, version=version)
        found = map_parts(client, ctx.lake, parts, _score_part, bundle,
                          ctx.config.problem.id_column)
    scored_rows = _concat([f[0] for f in found]) if found else ctx.lake.read(
        name, version=version).head(0)
    write_scored(scored_rows, out)
    logged = _concat([f[1] for f in found]) if found else None
    rejected = sum(f[2] for f in found)
    at = parts[0].version if parts else ctx.lake.ref(name).version
    if logged is not None and logged.height:  # one commit, in the layout the server logs
        ids = logged["_id"] if "_id" in logged.columns else None
        rows = PredictionLog.rows(
            logged.select(bundle.feature_columns), [logged["_prediction"], logged["_score"]],
            request_id=f"batch-{uuid.uuid4().hex[:12]}", version=mv.version,
            records=logged[_AT], ids=None if ids is None else ids.cast(pl.String),
        )
        ctx.lake.append(table_name("predictions", mv.name), rows,
                        metadata={"loopml.stage": "predict", "loopml.table": f"{name}@{at}"})
    ctx.catalog.log_event("predict", mv.ref, {
        "table": f"{name}@{at}", "rows": scored_rows.height,
        "scored": 0 if logged is None else logged.height, "rejected": rejected,
        "out": str(out), "parts": len(parts), "cluster": ctx.config.compute.cluster})
    return out


# ---- per part (these run on the workers) ----------------------------------------------------


def _validate_part(rows: pl.DataFrame, part: TablePart,
                   contract: Contract) -> tuple[ValidationReport, pl.DataFrame]:
    from loopml.quality import validate

    checked = validate(rows, contract, drop_duplicates=False, batch_rules=False)
    return checked.report, checked.quarantined


def _score_part(rows: pl.DataFrame, part: TablePart, bundle: ModelBundle,
                id_column: str | None) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(the part's rows with their outputs, its scored rows for the log, rows refused)."""
    import polars as pl

    from loopml.pipeline._operate import score_rows

    at = pl.int_range(part.offset, part.offset + rows.height, dtype=pl.Int64, eager=True)
    work = rows.drop([c for c in PROVENANCE_COLUMNS if c in rows.columns]).with_columns(
        at.alias(_AT))
    out, scored, rejected = score_rows(bundle, work, [_AT])
    outputs = out.select("_prediction", "_score", "_reasons")
    logged = scored.select([*bundle.feature_columns, "_prediction", "_score", _AT])
    if id_column is not None and id_column in rows.columns:
        ids = rows.select(rows[id_column].alias("_id")).with_columns(at.alias(_AT))
        logged = logged.join(ids, on=_AT, how="left")
    return rows.hstack(outputs.get_columns()), logged, rejected


# ---- merging --------------------------------------------------------------------------------


def _merged(reports: list[ValidationReport], contract: Contract) -> ValidationReport:
    from loopml.core.records import ValidationReport

    if not reports:
        return ValidationReport(source=contract.source,
                                contract_fingerprint=contract.fingerprint(), rows_in=0,
                                rows_accepted=0, rows_quarantined=0, duplicates=0)
    merged = reports[0]
    for r in reports[1:]:
        merged = merged.plus(r)
    return merged


def _concat(frames: list[pl.DataFrame]) -> Any:
    """The parts' frames as one, in order; a column a part lacks is null there."""
    import polars as pl

    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
