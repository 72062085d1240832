"""Leakage suspects: columns a model must not learn from, each with the reason.

Three checks, on a random sample of at most ``LEAK_SAMPLE`` rows:

- **predicts the target**: a feature that alone predicts the target almost perfectly, scored
  out of fold by its bins' target means (``loopml.explore._oof``): ROC AUC at least 0.95 for a
  binary target, for more classes a balanced accuracy 90% of the way from chance to perfect, R²
  at least 0.9 for regression (a *skill* of at least ``LEAK_SKILL``). Honest features rarely
  come close; a column copied from, or computed with, the outcome does.
- **id-like**: the one rule of ``loopml.core.ids`` (unique integers numbered densely or in row
  order, unique or UUID/hash-shaped strings).
- **after prediction time** (only with a time column, which marks when a prediction is made):
  see ``time_leaks`` in ``loopml.explore._timeleaks``.

The target and the time column are never suspects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from loopml.core.contract import PROVENANCE_COLUMNS
from loopml.core.errors import ConfigError, EmptyDataError, TargetError, unknown_name
from loopml.core.ids import id_like
from loopml.core.records import Leakage, LeakSuspect
from loopml.explore._bins import codes
from loopml.explore._columns import column_kind, labelled_rows, prepare, sample_rows
from loopml.explore._oof import METRIC_NAMES, Labels, make_labels, oof_score, skill, threshold
from loopml.explore._target import class_distribution

LEAK_SAMPLE = 20_000  # rows the scores are computed on
LEAK_SKILL = 0.9  # a single feature this good (ROC AUC 0.95) is suspected
LEAK_BINS = 32  # quantile bins of a number: fine enough to find a threshold on it
LEAK_TOP = 30  # categories kept before "other"
TASKS = ("classification", "regression", "clustering")


def find_leaks(
    frame: pl.DataFrame,
    *,
    target: str | None,
    task: str,
    time_column: str | None = None,
    positive_label: Any = None,
    max_rows: int = LEAK_SAMPLE,
    seed: int = 0,
    counts: Mapping[str, tuple[int, int]] | None = None,
) -> Leakage:
    """The columns of ``frame`` suspected of leaking the target or of being ids, with the
    reason for each, and every feature's out-of-fold score alone (see the module docstring).
    ``counts`` (column -> distinct non-null values, non-null values), when the caller has
    them, spare counting every column again.

    Without a target (clustering), or with a single class, only the id-like check runs;
    without a ``time_column`` the after-prediction-time checks do not.

    >>> import numpy as np, polars as pl
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=500)
    >>> frame = pl.DataFrame({"row": range(500), "x": x, "noise": rng.normal(size=500),
    ...                       "y": x > 0, "y_copy": np.where(x > 0, "late", "on time")})
    >>> found = find_leaks(frame, target="y", task="classification")
    >>> [(s.column, s.check) for s in found.suspects]
    [('y_copy', 'predicts target'), ('x', 'predicts target'), ('row', 'id-like')]
    >>> found.metric, found.threshold
    ('roc_auc', 0.95)
    """
    names = checked_columns(frame, target, task, time_column)
    data = prepare(frame.select(names))
    kinds = {n: column_kind(data[n]) for n in names}
    features = [n for n in names if n not in (target, time_column)]
    suspects: list[LeakSuspect] = []
    metric, cut, scores, sample = "", 0.0, [], data.height
    labelled, labels = None, None
    if target is not None and task != "clustering":
        labelled = sample_rows(labelled_rows(data, target), max_rows, seed)
        sample = labelled.height
    if labelled is not None and labelled.height:
        labels = _labels(labelled[target], task, positive_label, seed=seed)
    if labels is not None and labels.classes == 1:  # one class: nothing to predict
        labels = None
    if labels is not None:
        metric = labels.metric
        cut = threshold(metric, LEAK_SKILL, labels.classes)
        for name in features:
            if kinds[name] == "text":
                continue
            found, levels = feature_codes(labelled[name], kinds[name])  # type: ignore[index]
            scores.append((name, round(oof_score(found, levels, labels), 4)))
        scores.sort(key=lambda item: (-item[1], item[0]))
        suspects += [
            LeakSuspect(column=name, check="predicts target", score=value,
                        reason=_predicts_reason(name, metric, value, sample))
            for name, value in scores
            if skill(metric, value, labels.classes) >= LEAK_SKILL
        ]
    for name in features:
        distinct, present = (counts or {}).get(name, (None, None))
        why = id_like(data[name], distinct=distinct, present=present)
        if why is not None:
            suspects.append(LeakSuspect(column=name, check="id-like", reason=why))
    if time_column is not None and labelled is not None and labels is not None:
        from loopml.explore._timeleaks import time_leaks

        suspects += time_leaks(labelled, kinds, time_column=time_column, target=target,
                               labels=labels)
    return Leakage(
        sampled_rows=sample, metric=metric, threshold=cut, scores=tuple(scores),
        suspects=tuple(suspects), time_column=time_column,
    )


def feature_codes(series: pl.Series, kind: str) -> tuple[np.ndarray, int]:
    """Each row's bin of ``series`` in the shared binning, and the number of bins."""
    found, bin_labels = codes(series, kind, bins=LEAK_BINS, top=LEAK_TOP)
    return found, len(bin_labels)


def _labels(series: pl.Series, task: str, configured: Any, *, seed: int) -> Labels:
    """Class codes in ``class_distribution``'s order (the positive class by the one rule), or
    the regression values."""
    if task == "regression":
        return make_labels(series.cast(pl.Float64).to_numpy(), 0, -1, seed=seed)
    texts, _, positive, index = class_distribution(series, configured)
    text = series.cast(pl.String)
    y = text.replace_strict(list(texts), list(range(len(texts))), return_dtype=pl.Int64)
    return make_labels(y.to_numpy(), len(texts), index if positive is not None else -1,
                       seed=seed)


def _predicts_reason(name: str, metric: str, value: float, rows: int) -> str:
    what = METRIC_NAMES[metric]
    perfect = "determines the target (is the target computed from it?)" if (
        value >= 0.999) else "predicts the target almost perfectly"
    return (f"alone it {perfect}: out-of-fold {what} {value:.3f} on {rows:,} rows; "
            "check that it is known when a prediction is made")


def checked_columns(frame: pl.DataFrame, target: str | None, task: str,
           time_column: str | None) -> list[str]:  # fmt: skip
    """The checked columns, after checking the arguments."""
    if task not in TASKS:
        raise TargetError(unknown_name("task", task, TASKS), hint="Set problem.task in loopml.yaml.")
    names = [n for n in frame.columns if n not in PROVENANCE_COLUMNS and not n.startswith("_")]
    if target is not None and target not in names:
        raise TargetError(
            unknown_name("target column", target, names),
            hint="Set problem.target in loopml.yaml to one of the table's columns.",
        )
    if time_column is not None:
        if time_column not in names:
            raise ConfigError(
                unknown_name("time column", time_column, names),
                hint="Set problem.time_column in loopml.yaml to one of the table's columns.",
            )
        dtype = frame.schema[time_column]
        if not (dtype.is_temporal() or dtype.is_numeric()):
            raise ConfigError(
                f"The time column {time_column!r} holds {dtype} values; it must hold dates, "
                "date-times or numbers.",
                hint="Pick a column with timestamps, or convert this one in the data.",
            )
    if frame.height == 0 or not names:
        raise EmptyDataError(
            f"The table has {frame.height} rows and {len(names)} columns to check.",
            hint="Ingest some data first; columns starting with '_' are not checked.",
        )
    return names
