"""``profile``: one pass of statistics over a clean table, ready for the profile report."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import polars as pl

from loopml.core.cpu import available_threads
from loopml.core.errors import EmptyDataError, TargetError, unknown_name
from loopml.core.records import ColumnProfile, Profile, QuarantineSummary
from loopml.explore._anomalies import anomalies
from loopml.explore._columns import column_kind, describe, prepare, sample_rows, scalar_stats
from loopml.explore._labels import check_labels
from loopml.explore._leakage import find_leaks
from loopml.explore._pairs import PAIR_ROWS, categorical_matrices, spearman
from loopml.explore._sections import duplicates, missing_patterns, trends
from loopml.explore._summary import TableSummary, plan_bins, profiled_columns
from loopml.explore._summary import described as summary_described
from loopml.explore._target import (
    class_counts,
    class_distribution,
    correlations,
    encode_target,
    relation,
)

TASKS = ("classification", "regression", "clustering")
MOSTLY_MISSING = 0.5
HIGH_CARDINALITY = 200
SKEWED = 3.0
LEAK = 0.9
# with a summary of every row, the sections computed on the rows given instead
SAMPLED_ROWS_SECTIONS = "missingness patterns, duplicates, leakage and label checks"


def profile(
    frame: pl.DataFrame,
    *,
    source: str,
    target: str | None,
    task: str,
    positive_label: Any = None,
    time_column: str | None = None,
    exclude: Sequence[str] = (),
    max_rows: int = 200_000,
    seed: int = 0,
    quarantine: QuarantineSummary | None = None,
    summary: TableSummary | None = None,
) -> Profile:
    """Profile a clean table: per-column statistics and distributions, missingness, target
    balance, each feature's relationship to the target and a correlation matrix.

    Beyond the columns it finds which columns are missing together, exact duplicate rows,
    trends per period of ``time_column`` (default: the first date or datetime column),
    Spearman, Cramér's V and correlation-ratio matrices and the most anomalous rows; a
    ``quarantine`` summary (rows of the source held back, by reason) is carried along.

    Statistics, distributions, missingness, duplicates and trends use every row; the
    relationships and correlations use a random sample of ``max_rows`` rows
    (``Profile.sampled_rows``), the pairwise matrices at most 50,000 and the
    anomalies at most 10,000 of those; ``Profile.sampling``
    names each sampled section and its rows. Provenance columns and any
    column whose name starts with ``_`` are skipped. For classification the relationships
    show the share of one class, whose index in ``target_distribution`` is the target
    column's ``stats["positive_index"]``: the positive class (``Profile.positive_label``,
    chosen by ``loopml.core.labels.positive_label`` from the classes and their counts, as
    training chooses it; ``positive_label`` is ``problem.positive_label``), else the most
    frequent class. Datetime ``min``/``max`` are epoch seconds (UTC).

    The profile also checks for leakage (``find_leaks``: features that predict the target
    alone, id-like columns and, with a ``time_column``, values recorded after the prediction
    time) and, with a target, the labels (``check_labels``: conflicts, suspected mislabels,
    class balance) on the features less ``exclude`` (``problem.exclude``) and the leakage
    suspects.

    With a ``summary`` (``summarize`` of each part of the table, ``merge``d, with the
    histogram counts of ``count_bins``), the column statistics, distributions, class counts
    and row count are the summary's, over every row of the table, and ``frame`` is a sample
    of the table's rows: the sections that need rows (missingness patterns, duplicates,
    leakage and label checks, and the sampled sections above; trends too unless the summary
    counted them by part) use it, and ``Profile.sampling`` says so when it holds fewer rows
    than the table.

    >>> import polars as pl
    >>> frame = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 50, "y": [0, 0, 1, 1] * 50})
    >>> p = profile(frame, source="demo", target="y", task="classification")
    >>> [c.name for c in p.columns], p.target_distribution, p.positive_label
    (['x', 'y'], (('0', '1'), (100, 100)), 1)
    >>> p.columns[0].association  # x determines y
    1.0
    """
    if task not in TASKS:
        raise TargetError(
            unknown_name("task", task, TASKS), hint="Set problem.task in loopml.yaml."
        )
    names = profiled_columns(frame)
    if summary is not None:
        names = [n for n in names if n in summary.columns]
    if target is not None and target not in names:
        raise TargetError(
            unknown_name("target column", target, names),
            hint="Set problem.target in loopml.yaml to one of the table's columns.",
        )
    rows = frame.height if summary is None else summary.rows
    if rows == 0 or frame.height == 0 or not names:
        raise EmptyDataError(
            f"Source {source!r} has {rows} rows and {len(names)} profilable columns.",
            hint="Ingest some data first; columns starting with '_' are not profiled.",
        )
    if time_column is not None and time_column not in names:
        raise TargetError(
            unknown_name("time column", time_column, names),
            hint="Set problem.time_column in loopml.yaml to a date or datetime column.",
        )
    data = prepare(frame.select(names))
    if summary is None:
        kinds = {n: column_kind(data[n]) for n in names}
        stats = scalar_stats(data, kinds)
    else:
        kinds, stats = summary.finished()
        kinds = {n: kinds[n] for n in names}
    if time_column is not None and kinds[time_column] != "datetime":
        raise TargetError(
            f"The time column {time_column!r} must hold dates or datetimes; it is "
            f"{frame.schema[time_column]}.",
            hint="Set problem.time_column to a date or datetime column, or parse it first.",
        )
    if target is not None and task == "regression" and kinds[target] != "numeric":
        raise TargetError(
            f"Regression needs a numeric target; {target!r} is {data[target].dtype}.",
            hint="Use task: classification, or pick a numeric target column.",
        )
    counts = {n: (s["distinct"] - (1 if s["nulls"] else 0), s["count"])
              for n, s in stats.items()}  # n_unique counts a null as a value
    # the sections below are NumPy and Polars work that releases the GIL: leakage, the
    # anomalies and the target relationships run beside the rest on the process's cores
    pool = ThreadPoolExecutor(max_workers=available_threads())
    leaks_done = pool.submit(find_leaks, data, target=target, task=task,
                             time_column=time_column, positive_label=positive_label, seed=seed,
                             counts=counts)
    sample = sample_rows(data, max_rows, seed)
    odd_done = pool.submit(anomalies, sample, kinds, seed=seed)
    target_info = _target_side(data, sample, target, task, positive_label, summary)
    related: dict[str, Future[Any]] = {}
    if target_info is not None:
        labelled, encoded = target_info["sample"], target_info["encoded"]
        related = {name: pool.submit(relation, labelled[name], kinds[name], encoded)
                   for name in names if name != target and kinds[name] != "text"}
    pool.shutdown(wait=False)
    plans = plan_bins(summary) if summary is not None else {}
    described = {name: describe(data[name], kinds[name], stats[name]) if summary is None
                 else summary_described(summary, name, kinds[name], stats[name], plans)
                 for name in names}

    leakage = leaks_done.result()
    suspected: dict[str, list[str]] = {}
    for suspect in leakage.suspects:
        suspected.setdefault(suspect.column, []).append(
            suspect.reason if suspect.check == "id-like" else f"leak suspect: {suspect.reason}")
    label_quality = None
    if target is not None and task != "clustering":
        skipped = [*exclude, *(c for c in leakage.columns if c not in exclude)]
        label_quality = check_labels(data, target=target, task=task, exclude=skipped,
                                     positive_label=positive_label, seed=seed)

    columns = []
    for name in names:
        col_stats = stats[name]
        relation_fields: dict[str, Any] = {}
        if name in related:
            triple, score = related[name].result()
            relation_fields = {"target_relation": triple, "association": round(score, 4)}
        if name == target and target_info is not None and target_info["positive_index"] >= 0:
            described[name]["stats"]["positive_index"] = float(target_info["positive_index"])
        column = ColumnProfile(
            name=name,
            kind=kinds[name],
            count=int(col_stats["count"]),
            nulls=int(col_stats["nulls"]),
            distinct=int(col_stats["distinct"]) - (1 if col_stats["nulls"] else 0),
            **described[name],
            **relation_fields,
        )
        columns.append(_with_warnings(column, rows=rows,
                                      suspected=tuple(suspected.get(name, ()))))
        if name == target and target_info is not None and task == "regression":
            target_info["distribution"] = column.histogram

    varied = [n for n in names if stats[n]["distinct"] - (1 if stats[n]["nulls"] else 0) > 1]
    numeric = [n for n in varied if kinds[n] in ("numeric", "boolean") and stats[n]["count"]]
    categorical = [n for n in varied if kinds[n] in ("categorical", "boolean")
                   and stats[n]["distinct"] <= max(30, sample.height // 2)]  # fmt: skip
    few = sample_rows(sample, PAIR_ROWS, seed)
    cramer, ratio = categorical_matrices(
        few, categorical, [n for n in numeric if kinds[n] == "numeric"]
    )
    rank = spearman(few, numeric)
    missing = missing_patterns(data)
    repeated = duplicates(data)
    trend = (summary.trends if summary is not None and summary.counted_trends
             else _trends(data, kinds, numeric, time_column, target, target_info))
    odd = odd_done.result()
    sampling = []
    if data.height < rows:
        counted = summary is not None and summary.counted_trends
        sampling.append((SAMPLED_ROWS_SECTIONS + ("" if counted or trend is None
                                                  else ", trends"), data.height))
    if sample.height < rows:
        sampling.append(("relationships to the target, Pearson correlations", sample.height))
    if few.height < rows:
        sampling.append(("Spearman, Cramér's V and correlation ratio", few.height))
    if odd is not None and odd.sampled_rows < rows:
        sampling.append(("anomalies", odd.sampled_rows))
    return Profile(
        source=source,
        rows=rows,
        target=target,
        task=task,
        columns=tuple(columns),
        target_distribution=None if target_info is None else target_info["distribution"],
        correlations=correlations(sample, numeric),
        sampled_rows=sample.height,
        positive_label=None if target_info is None else target_info["positive"],
        label_quality=label_quality,
        leakage=leakage,
        matrices=tuple(m for m in (rank, cramer, ratio) if m is not None),
        missing=missing,
        trends=trend,
        anomalies=odd,
        duplicates=repeated,
        quarantine=quarantine,
        sampling=tuple(sampling),
    )


def _trends(
    data: pl.DataFrame, kinds: dict[str, str], numeric: list[str], time_column: str | None,
    target: str | None, target_info: dict[str, Any] | None,
) -> Any:
    """Trends over ``time_column``, else the first datetime column that is not the target."""
    if time_column is None:
        found = [n for n, k in kinds.items() if k == "datetime" and n != target]
        if not found:
            return None
        time_column = found[0]
    shown = None
    if target_info is not None:
        if target_info["shown"] is not None:
            shown = (pl.col(target).cast(pl.String) == target_info["shown"]).cast(pl.Float64)
        elif kinds[target] == "numeric":
            shown = pl.col(target)
    features = [n for n in numeric if n != target and kinds[n] == "numeric"]
    return trends(data, time_column, numeric=features, target_expr=shown)


def _target_side(
    data: pl.DataFrame, sample: pl.DataFrame, target: str | None, task: str, configured: Any,
    summary: TableSummary | None,
) -> dict[str, Any] | None:
    """The target's distribution, its positive class, its encoding on the sampled rows that
    have it, and the index of the class whose share the relationships show."""
    if target is None or task == "clustering":
        return None
    labelled = sample.filter(pl.col(target).is_not_null())
    if task == "classification":
        counts_of = None if summary is None else summary.columns[target].counts
        labels, counts, positive, index = (
            class_distribution(data[target], configured) if counts_of is None
            else class_counts(counts_of, configured))
        shown = labels[index] if index >= 0 else None
        distribution = (labels, counts)
    else:  # regression: the target column's histogram, filled in by the caller
        positive, shown, index, distribution = None, None, -1, None
    return {
        "sample": labelled,
        "encoded": encode_target(labelled[target], task, shown),
        "distribution": distribution,
        "positive": positive,
        "positive_index": index,
        "shown": shown,
    }


def _with_warnings(
    column: ColumnProfile, *, rows: int, suspected: tuple[str, ...]
) -> ColumnProfile:
    """``suspected``: the leakage checks' reasons about this column."""
    from dataclasses import replace

    found = []
    if column.distinct <= 1:
        found.append("constant: a single value" if column.count else "constant: no values")
    if rows and column.nulls / rows >= MOSTLY_MISSING:
        found.append(f"mostly missing: {column.nulls / rows:.0%} of rows")
    if column.kind == "categorical" and column.distinct > HIGH_CARDINALITY:
        found.append(f"high cardinality: {column.distinct:,} distinct values")
    skew = column.stats.get("skew")
    if skew is not None and abs(skew) > SKEWED:
        found.append(f"highly skewed: skewness {skew:.1f}")
    if column.association is not None and column.association >= LEAK:
        found.append(
            f"possible leak: association {column.association:.2f} with the target; "
            "check that it is known at prediction time"
        )
    found.extend(suspected)
    return replace(column, warnings=tuple(found)) if found else column
