"""Ground truth back: labels sent for logged predictions, upserted into ``feedback/<model>``.

A label names its prediction by ``request_id`` and ``record`` (as ``/predict`` answered), or
by ``id`` (the ``problem.id_column`` value sent with the record; every logged prediction with
that id gets the label). The feedback table is keyed on (``_request_id``, ``_record``), so the
same label sent twice changes nothing and a corrected label replaces the old one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopml.core.errors import FeedbackError
from loopml.core.labels import match_label
from loopml.core.records import FeedbackResult
from loopml.lake import table_name

if TYPE_CHECKING:
    import polars as pl

    from loopml.lake import Lake

KEYS = ("_request_id", "_record")
MAX_PROBLEMS = 50  # problems listed one by one; the counts cover them all


def take_feedback(
    lake: Lake,
    model_name: str,
    labels: pl.DataFrame,
    *,
    task: str,
    classes: Sequence[Any] | None,
    id_column: str | None,
) -> FeedbackResult:
    """Upsert ``labels`` for logged predictions into ``feedback/<model_name>``.

    ``labels`` has a ``label`` column and, per row, ``request_id`` and ``record`` or ``id``.
    Rows whose key no logged prediction has are counted as unknown; labels outside
    ``classes`` (classification) or not numeric (regression) are rejected with a reason;
    every other row is kept.

    >>> import tempfile, polars as pl
    >>> from loopml.lake import Lake
    >>> lake = Lake(tempfile.mkdtemp())
    >>> _ = lake.append("predictions/m", pl.DataFrame(
    ...     {"_request_id": ["r1", "r1"], "_record": [0, 1], "_prediction": ["yes", "no"]}))
    >>> labels = pl.DataFrame({"request_id": ["r1", "r1", "r9"], "record": [0, 1, 0],
    ...                        "label": ["YES", "maybe", "no"]})
    >>> result = take_feedback(lake, "m", labels, task="classification",
    ...                        classes=["no", "yes"], id_column=None)
    >>> result.accepted, result.unknown, result.invalid
    (1, 1, 1)
    >>> lake.read("feedback/m")["_label"].to_list()
    ['yes']
    """
    import polars as pl

    if task not in ("classification", "regression"):
        raise FeedbackError(
            f"A {task} model takes no labels: there is no ground truth to compare with.",
            hint="Send feedback to a classification or regression model.",
        )
    if "label" not in labels.columns:
        raise FeedbackError(
            f"The feedback has no 'label' column (columns: {', '.join(labels.columns) or 'none'}).",
            hint="Send rows with 'label' and either 'request_id' and 'record', or 'id'.",
        )
    by_key = "request_id" in labels.columns
    by_id = "id" in labels.columns
    if not by_key and not by_id:
        raise FeedbackError(
            "The feedback names no predictions: it needs 'request_id' and 'record' columns, "
            "or an 'id' column.",
            hint="Use the request_id /predict answered and the record's position, or the value "
            "of problem.id_column sent with the record.",
        )
    frame = labels.with_row_index("_row").select(
        "_row",
        pl.col("label"),
        (pl.col("request_id").cast(pl.String) if by_key else pl.lit(None, pl.String)).alias("rid"),
        (pl.col("record").cast(pl.Int64, strict=False) if "record" in labels.columns
         else pl.lit(None, pl.Int64)).alias("rec"),
        (pl.col("id").cast(pl.String) if by_id else pl.lit(None, pl.String)).alias("rowid"),
    )
    problems: list[str] = []
    invalid = 0

    def reject(row: int, reason: str) -> None:
        nonlocal invalid
        invalid += 1
        if len(problems) < MAX_PROBLEMS:
            problems.append(f"label {row}: {reason}")

    # ---- the label itself -------------------------------------------------------------------
    values: dict[int, Any] = {}
    for row, raw in zip(frame["_row"].to_list(), frame["label"].to_list(), strict=True):
        value, reason = _label_value(raw, task, classes)
        if reason is None:
            values[row] = value
        else:
            reject(row, reason)

    # ---- its key ----------------------------------------------------------------------------
    keyed, ided = [], []
    for row, rid, rec, rowid in frame.select("_row", "rid", "rec", "rowid").iter_rows():
        if row not in values:
            continue
        if rid is not None:
            if rec is None:
                reject(row, f"request_id {rid!r} needs a whole-number 'record'")
            else:
                keyed.append((row, rid, rec))
        elif rowid is not None:
            if id_column is None:
                reject(row, "labels by 'id' need problem.id_column in loopml.yaml")
            else:
                ided.append((row, rowid))
        else:
            reject(row, "needs 'request_id' and 'record', or 'id'")

    log = _logged(lake, model_name, {rid for _, rid, _ in keyed}, {i for _, i in ided})
    found: list[dict[str, Any]] = []
    unknown = 0
    if keyed:
        asked = pl.DataFrame(keyed, schema={"_row": pl.Int64, "_request_id": pl.String,
                                            "_record": pl.Int64}, orient="row")
        hits = asked.join(log, on=list(KEYS), how="left")
        for row, rid, rec, logged_id, known in hits.select(
            "_row", "_request_id", "_record", "_id", "_known"
        ).iter_rows():
            if known:
                found.append({"_request_id": rid, "_record": rec, "_id": logged_id,
                              "_row": row})
            else:
                unknown += 1
                if len(problems) < MAX_PROBLEMS:
                    problems.append(f"label {row}: no logged prediction has request_id "
                                    f"{rid!r} and record {rec}")
    if ided:
        asked = pl.DataFrame(ided, schema={"_row": pl.Int64, "_id": pl.String}, orient="row")
        hits = asked.join(log.filter(pl.col("_id").is_not_null()), on="_id", how="left")
        for row, group in hits.group_by("_row", maintain_order=True):
            if not group["_known"].fill_null(False).any():
                unknown += 1
                if len(problems) < MAX_PROBLEMS:
                    problems.append(f"label {row[0]}: no logged prediction has id "
                                    f"{group['_id'][0]!r}")
                continue
            for rid, rec, logged_id in group.select("_request_id", "_record", "_id").iter_rows():
                found.append({"_request_id": rid, "_record": rec, "_id": logged_id,
                              "_row": row[0]})

    if not found:
        return FeedbackResult(accepted=0, unknown=unknown, invalid=invalid,
                              problems=tuple(problems))
    now = datetime.now(UTC)
    label_type = pl.Float64 if task == "regression" else log.schema.get("_prediction")
    out = pl.DataFrame(
        {
            "_request_id": [f["_request_id"] for f in found],
            "_record": [f["_record"] for f in found],
            "_id": [f["_id"] for f in found],
        },
        schema={"_request_id": pl.String, "_record": pl.Int64, "_id": pl.String},
    ).with_columns(
        pl.Series("_label", [values[f["_row"]] for f in found], dtype=label_type, strict=False),
        pl.lit(now, dtype=pl.Datetime("us", "UTC")).alias("_label_received_at"),
    )
    ref = lake.merge(
        table_name("feedback", model_name), out, keys=KEYS,
        metadata={"loopml.stage": "feedback", "loopml.rows": str(out.height)},
    )
    return FeedbackResult(accepted=out.height, unknown=unknown, invalid=invalid,
                          problems=tuple(problems), table=str(ref))


def _label_value(raw: Any, task: str, classes: Sequence[Any] | None) -> tuple[Any, str | None]:
    """(the label as the model predicts it, None) or (None, why it is rejected)."""
    import math

    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, "the label is empty"
    if task == "regression":
        if isinstance(raw, bool):
            return None, f"{raw!r} is not a number"
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return None, f"{raw!r} is not a number"
        if not math.isfinite(value):
            return None, f"{raw!r} is not a finite number"
        return value, None
    found = match_label(raw, list(classes or ()))
    if found is None:
        shown = ", ".join(repr(c) for c in list(classes or ())[:20])
        return None, f"{raw!r} is not one of the model's classes ({shown})"
    return found, None


def _logged(lake: Lake, model_name: str, request_ids: set[str], ids: set[str]) -> pl.DataFrame:
    """The logged predictions with these request ids or ids: keys, ``_id``, ``_known``."""
    import polars as pl

    table = table_name("predictions", model_name)
    empty = pl.DataFrame(schema={"_request_id": pl.String, "_record": pl.Int64,
                                 "_id": pl.String, "_known": pl.Boolean, "_prediction": pl.String})
    if not (request_ids or ids) or not lake.exists(table):
        return empty
    scan = lake.scan(table)
    names = scan.collect_schema().names()
    has_id = "_id" in names
    wanted = pl.col("_request_id").is_in(list(request_ids))
    if has_id and ids:
        wanted = wanted | pl.col("_id").is_in(list(ids))
    if "_shadow" in names:  # a shadow row repeats the served row's key
        wanted = wanted & ~pl.col("_shadow").fill_null(False)
    columns = [pl.col("_request_id"), pl.col("_record"),
               pl.col("_id") if has_id else pl.lit(None, pl.String).alias("_id"),
               pl.lit(True).alias("_known")]
    if "_prediction" in names:
        columns.append(pl.col("_prediction"))
    found = scan.filter(wanted).select(columns).collect()
    return found.unique(list(KEYS), keep="first", maintain_order=True)
