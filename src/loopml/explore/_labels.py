"""Label quality: conflicting labels, suspected mislabels and class balance.

- **Conflicts**: labelled rows whose features are all equal but whose labels differ. No model
  can be right on all of them; often one of the labels is wrong, or a feature that tells them
  apart is missing.
- **Suspected mislabels** (classification): a cheap model (scikit-learn's
  HistGradientBoostingClassifier, ``MODEL_TREES`` trees of ``MODEL_LEAVES`` leaves, on at most
  ``MODEL_THREADS`` threads) is cross-validated on a random sample of at most ``LABEL_SAMPLE``
  labelled rows; its out-of-fold probabilities go through confident learning
  (``loopml.explore._confident``). On noisy targets the model is unsure and flags many rows:
  read the count with the estimated noise and the examples, which come most suspicious first.
- **Class balance**: each class's share, and the imbalance ratio (rows of the largest class
  per row of the smallest); at least ``IMBALANCE_RATIO`` is reported as imbalanced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from loopml.core.errors import TargetError
from loopml.core.records import LabelConflict, LabelIssue, LabelQuality
from loopml.explore._columns import column_kind, labelled_rows, prepare, sample_rows
from loopml.explore._leakage import checked_columns
from loopml.explore._target import class_distribution

LABEL_SAMPLE = 5_000  # rows the out-of-fold model is cross-validated on
MODEL_TREES = 30
MODEL_LEAVES = 15
MODEL_BINS = 63
MODEL_LEARNING_RATE = 0.3  # probabilities of clear rows near 0 or 1 in few trees
FOLDS = 5
MODEL_THREADS = 1  # on a few thousand rows a second thread costs more than it saves
IMBALANCE_RATIO = 10.0
MAX_CONFLICTS = 5  # example groups kept
MAX_ISSUES = 20  # example mislabels kept
SHOWN_FEATURES = 6  # feature values shown per conflict
MAX_CATEGORIES = MODEL_BINS - 1  # a categorical feature has at most max_bins codes: one is "other"
ROW = "__loopml_row"


def check_labels(
    frame: pl.DataFrame,
    *,
    target: str,
    task: str,
    exclude: Sequence[str] = (),
    positive_label: Any = None,
    max_rows: int = LABEL_SAMPLE,
    seed: int = 0,
) -> LabelQuality:
    """Conflicting labels, suspected mislabels and class balance of ``frame``'s ``target``
    (see the module docstring). The features are every other column but ``exclude`` (pass
    the leakage suspects: a leak makes every label look certain). Rows are numbered by their
    position in ``frame``.

    >>> import numpy as np, polars as pl
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=400)
    >>> y = x > 0
    >>> y[[3, 50, 120]] = ~y[[3, 50, 120]]  # three labels flipped
    >>> q = check_labels(pl.DataFrame({"x": x, "y": y}), target="y", task="classification")
    >>> sorted(i.row for i in q.issues if abs(x[i.row]) > 0.3) == sorted(
    ...     i for i in (3, 50, 120) if abs(x[i]) > 0.3)
    True
    """
    if task not in ("classification", "regression"):
        raise TargetError(
            f"Label checks need a target to learn; the task is {task!r}.",
            hint="Use task classification or regression with a target column.",
        )
    names = checked_columns(frame, target, task, None)
    if task == "regression" and not frame.schema[target].is_numeric():
        raise TargetError(
            f"Regression needs a numeric target; {target!r} is {frame.schema[target]}.",
            hint="Use task: classification, or pick a numeric target column.",
        )
    features = [n for n in names if n != target and n not in set(exclude)]
    data = prepare(frame.select(names)).with_row_index(ROW)
    labelled = labelled_rows(data, target)
    groups, rows, conflicts = _conflicts(labelled, features, target)
    quality = LabelQuality(rows=labelled.height, features=tuple(features),
                           conflicting_groups=groups, conflicting_rows=rows, conflicts=conflicts)
    if task != "classification" or labelled.height == 0:
        return quality
    texts, counts, _, _ = class_distribution(labelled[target], positive_label)
    total = sum(counts)
    ratio = counts[0] / counts[-1]
    quality = replace(
        quality,
        class_shares=tuple((t, round(c / total, 6)) for t, c in zip(texts, counts, strict=True)),
        imbalance_ratio=round(ratio, 4), imbalanced=ratio >= IMBALANCE_RATIO,
    )
    if len(texts) < 2 or not features:
        return quality
    sample = sample_rows(labelled, max_rows, seed)
    return replace(quality, **_mislabels(sample, features, target, texts, seed=seed))


def _conflicts(
    labelled: pl.DataFrame, features: list[str], target: str
) -> tuple[int, int, tuple[LabelConflict, ...]]:
    """Groups of identical feature rows with more than one label: (groups, rows, examples).

    Rows are grouped by a 64-bit hash of all their feature values (one key instead of every
    column: several times faster on wide tables); two different rows share a hash with a
    chance of about n² / 2⁶⁵, under one in a billion for a million rows."""
    if not features or labelled.height == 0:
        return 0, 0, ()
    # a row hash column by column: hashing a struct of the columns held 3 GB at 10 M rows
    key = labelled.select(features).hash_rows(seed=0).alias("__key")
    repeated = key.is_duplicated()  # only rows whose features repeat can conflict
    if not repeated.any():
        return 0, 0, ()
    keyed = labelled.filter(repeated).with_columns(key.filter(repeated))
    groups = (
        keyed.group_by("__key")
        .agg(pl.col(target).n_unique().alias("__labels"), pl.len().alias("__rows"))
        .filter(pl.col("__labels") > 1)
    )
    if groups.height == 0:
        return 0, 0, ()
    top = groups.sort(["__rows", "__key"], descending=[True, False]).head(MAX_CONFLICTS)
    examples = []
    for key, rows in zip(top["__key"], top["__rows"], strict=True):
        members = keyed.filter(pl.col("__key") == key)
        first = members.row(0, named=True)
        counts = members[target].cast(pl.String).value_counts()
        counts = counts.sort(["count", target], descending=[True, False], nulls_last=True)
        examples.append(LabelConflict(
            rows=int(rows),
            features=tuple((f, "missing" if first[f] is None else str(first[f]))
                           for f in features[:SHOWN_FEATURES]),  # fmt: skip
            labels=tuple((str(v), int(n)) for v, n in counts.iter_rows()),
        ))
    return groups.height, int(groups["__rows"].sum()), tuple(examples)


def _mislabels(
    sample: pl.DataFrame, features: list[str], target: str, classes: tuple[str, ...], *,
    seed: int,
) -> dict[str, Any]:  # fmt: skip
    """Out-of-fold probabilities of the cheap model, then confident learning."""
    from threadpoolctl import threadpool_limits

    from loopml.explore._confident import find_label_issues

    y = sample[target].cast(pl.String).replace_strict(
        list(classes), list(range(len(classes))), return_dtype=pl.Int64).to_numpy()
    smallest = int(np.bincount(y, minlength=len(classes)).min())
    folds = min(FOLDS, smallest)
    if folds < 2:  # a class with one row cannot be held out and learned at once
        return {"sampled_rows": sample.height}
    x, categorical = _matrix(sample, features)
    # a column must have a value in every training fold (all missing there, the model's
    # binning fails); fewer values than one held-out fold's rows cannot promise that
    present = (~np.isnan(x)).sum(axis=0)
    usable = present > -(-len(y) // folds)
    if not usable.any():
        return {"sampled_rows": sample.height}
    x, categorical = x[:, usable], [c for c, u in zip(categorical, usable, strict=True) if u]
    model_name = (f"HistGradientBoostingClassifier ({MODEL_TREES} trees of {MODEL_LEAVES} "
                  "leaves)")
    with threadpool_limits(limits=MODEL_THREADS):
        probs = _oof_probs(x, y, categorical, folds=folds, seed=seed)
    found = find_label_issues(y, probs)
    shown = found.rows[:MAX_ISSUES]
    positions = sample[ROW].to_numpy()
    issues = tuple(
        LabelIssue(
            row=int(positions[i]), given=classes[y[i]], suggested=classes[int(s)],
            self_confidence=round(float(probs[i, y[i]]), 4),
            margin=round(float(probs[i, int(s)] - probs[i, y[i]]), 4),
        )
        for i, s in zip(shown, found.suggested[:MAX_ISSUES], strict=True)
    )
    return {
        "sampled_rows": sample.height, "folds": folds, "model": model_name,
        "suspected": int(len(found.rows)), "estimated_noise": round(found.estimated_noise, 6),
        "thresholds": tuple((c, round(float(t), 4))
                            for c, t in zip(classes, found.thresholds, strict=True)),
        "issues": issues,
    }  # fmt: skip


def _matrix(sample: pl.DataFrame, features: list[str]) -> tuple[np.ndarray, list[bool]]:
    """Numbers as they are (date-times as their physical value, booleans as 0/1, missing as
    NaN); categories as codes of their most frequent values, the rest as one code."""
    from loopml.core.bins import top_categories

    columns, categorical = [], []
    for name in features:
        series = sample[name]
        kind = column_kind(series)
        if kind == "text":
            continue
        if kind == "categorical":
            text = series.cast(pl.String)
            kept = list(top_categories(text, MAX_CATEGORIES))
            coded = text.replace_strict(kept, list(range(len(kept))), default=len(kept),
                                        return_dtype=pl.Float64)
            columns.append(coded.to_numpy())
            categorical.append(True)
        else:
            columns.append(series.to_physical().cast(pl.Float64).to_numpy())
            categorical.append(False)
    if not columns:
        return np.zeros((sample.height, 1)), [False]
    return np.column_stack(columns), categorical


def _oof_probs(x: np.ndarray, y: np.ndarray, categorical: list[bool], *, folds: int,
               seed: int) -> np.ndarray:  # fmt: skip
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    model = HistGradientBoostingClassifier(
        max_iter=MODEL_TREES, max_leaf_nodes=MODEL_LEAVES, max_bins=MODEL_BINS, early_stopping=False,
        learning_rate=MODEL_LEARNING_RATE,
        categorical_features=np.array(categorical), random_state=seed,
    )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_predict(model, x, y, cv=cv, method="predict_proba")
