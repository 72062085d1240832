"""Whole lake tables, one Parquet file at a time: validation against the source's contract
and batch scoring, in this process or on the workers of a Dask cluster (``_cluster``). Each
part's result is merged in table order, so where the parts ran changes nothing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.contract import PROVENANCE_COLUMNS
from loopml.core.errors import SourceError
from loopml.lake import table_name
from loopml.pipeline._cluster import connect, iter_parts, map_parts

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


SCORE_BATCH_ROWS = 1_000_000  # rows a table scoring scores, and logs, at a time at most


def score_table(ctx: Context, table: str, out: Path, *, version: int | None = None,
                model: str | None = None, batch_rows: int = SCORE_BATCH_ROWS) -> Path:
    """Score every row of a lake table version (``clean/flights``, or its SQL name
    ``clean_flights``) part by part, as ``loopml predict`` scores a file: the table's rows in
    order with ``_prediction``, ``_score`` and ``_reasons``, written to ``out``, and the
    scored rows logged to ``predictions/<model>`` (``_record`` is the row's position in the
    table; every row of one scoring has the same ``_request_id``).

    Neither the table nor its predictions are held whole: each part is scored in batches of
    at most ``batch_rows`` rows, its rows written to ``out`` as it comes and to the log's data
    files ``batch_rows`` rows at a time. Only when every part is scored do ``out`` appear and
    the log's files become one commit: a scoring that fails half-way (a part that kills every
    worker) leaves neither."""
    import polars as pl

    from loopml.pipeline._operate import check_out, on_every_core
    from loopml.serve import PredictionLog

    check_out(out)
    request_id = f"batch-{uuid.uuid4().hex[:12]}"
    pending: list[pl.DataFrame] = []
    counts = {"rows": 0, "scored": 0, "rejected": 0, "commits": 0}

    def flush(stage: Any) -> None:  # the pending log rows as one file of the log's commit
        if not pending:
            return
        logged = _concat(pending)
        pending.clear()
        ids = logged["_id"] if "_id" in logged.columns else None
        rows = PredictionLog.rows(
            logged.select(bundle.feature_columns), [logged["_prediction"], logged["_score"]],
            request_id=request_id, version=mv.version, records=logged[_AT],
            ids=None if ids is None else ids.cast(pl.String),
        )
        stage.add(rows)
        counts["scored"] += logged.height

    with connect(ctx.config) as client:
        name = ctx.lake.table(table)
        mv, bundle = ctx.load(model)
        if client is None:  # parts come one by one: each is scored on every core
            on_every_core(bundle)
        log_table = table_name("predictions", mv.name)
        parts = ctx.lake.parts(name, version=version)
        at = parts[0].version if parts else (
            ctx.lake.ref(name).version if version is None else version)
        meta = {"loopml.stage": "predict", "loopml.table": f"{name}@{at}"}
        with ScoredFile(out) as written, ctx.lake.staged(log_table, metadata=meta) as stage:
            for scored_rows, logged, rejected in iter_parts(
                    client, ctx.lake, parts, _score_part, bundle, ctx.config.problem.id_column,
                    batch_rows):
                written.write(scored_rows)
                counts["rows"] += scored_rows.height
                counts["rejected"] += rejected
                if logged.height:
                    pending.append(logged)
                if sum(f.height for f in pending) >= batch_rows:
                    flush(stage)
            flush(stage)
            counts["commits"] = int(counts["scored"] > 0)
            if not parts:
                written.write(ctx.lake.read(name, version=at).head(0))
    ctx.catalog.log_event("predict", mv.ref, {
        "table": f"{name}@{at}", "rows": counts["rows"], "scored": counts["scored"],
        "rejected": counts["rejected"], "out": str(out), "parts": len(parts),
        "log_commits": counts["commits"], "request_id": request_id,
        "cluster": ctx.config.compute.cluster})
    return out


class ScoredFile:
    """Scored rows written to ``out`` frame by frame (CSV and NDJSON appended, Parquet one
    row group per frame), into a hidden file beside it that becomes ``out`` only when the
    block ends without error."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.tmp = self.out.with_name(f".{self.out.name}.{uuid.uuid4().hex[:8]}.tmp")
        self.schema: Any = None
        self._file: Any = None
        self._parquet: Any = None

    def __enter__(self) -> ScoredFile:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, frame: pl.DataFrame) -> None:
        try:
            self._write(frame)
        except OSError as exc:
            raise SourceError(f"Cannot write {self.out}: {exc.strerror}.") from exc

    def _write(self, frame: pl.DataFrame) -> None:
        suffix = self.out.suffix.lower()
        first = self.schema is None
        if first:
            self.schema = frame.schema
        else:  # a part whose outputs are all null may hold them untyped
            frame = frame.cast({c: t for c, t in self.schema.items() if c in frame.columns
                                and frame.schema[c] != t and str(t) != "Null"}, strict=False)
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            arrow = frame.to_arrow()
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.tmp, arrow.schema)
            self._parquet.write_table(arrow.cast(self._parquet.schema))
            return
        if self._file is None:
            self._file = open(self.tmp, "wb")  # noqa: SIM115 - closed in __exit__
        if suffix == ".csv":
            frame.write_csv(self._file, include_header=first)
        else:
            frame.write_ndjson(self._file)

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        import os

        for handle in (self._parquet, self._file):
            if handle is not None:
                handle.close()
        if kind is not None:
            self.tmp.unlink(missing_ok=True)
            return
        if self.schema is None:  # nothing written: an empty file of the format
            self.tmp.touch()
        os.replace(self.tmp, self.out)


# ---- per part (these run on the workers) ----------------------------------------------------


def _validate_part(rows: pl.DataFrame, part: TablePart,
                   contract: Contract) -> tuple[ValidationReport, pl.DataFrame]:
    from loopml.quality import validate

    checked = validate(rows, contract, drop_duplicates=False, batch_rules=False)
    return checked.report, checked.quarantined


def _score_part(rows: pl.DataFrame, part: TablePart, bundle: ModelBundle,
                id_column: str | None, batch_rows: int = SCORE_BATCH_ROWS
                ) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(the part's rows with their outputs, its scored rows for the log, rows refused),
    scored ``batch_rows`` rows at a time."""
    import polars as pl

    if rows.height <= batch_rows:
        return _score_batch(rows, part.offset, bundle, id_column)
    done = [_score_batch(batch, part.offset + i * batch_rows, bundle, id_column)
            for i, batch in enumerate(rows.iter_slices(batch_rows))]
    return (pl.concat([d[0] for d in done]), _concat([d[1] for d in done]),
            sum(d[2] for d in done))


def _score_batch(rows: pl.DataFrame, offset: int, bundle: ModelBundle, id_column: str | None
                 ) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    import polars as pl

    from loopml.pipeline._operate import score_rows

    at = pl.int_range(offset, offset + rows.height, dtype=pl.Int64, eager=True)
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
