"""How each feature relates to the target, how strongly, and how numeric columns correlate.

These run on the (possibly sampled) frame. A feature's *association* is computed on the
feature cut into 20 quantile bins (or its top 30 categories, "other" and "missing"):

- classification: the share of the target's entropy the binned feature explains,
  U = I(X; Y) / H(Y) (Theil's uncertainty coefficient), less the Miller-Madow bias;
- regression: the correlation ratio eta = sqrt(SS_between / SS_total) of the target over the
  bins, its square taken as epsilon-squared, which discounts what unrelated bins explain.

Both are 0 when the feature tells nothing about the target and 1 when it determines it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from loopml.core.labels import positive_label
from loopml.explore._bins import nested_codes

RELATION_BINS = 10  # bars a reader sees
RELATION_TOP = 20  # categories shown, as many as the column's top values
ASSOCIATION_BINS = 20  # finer bins for the score, so a threshold inside a bin is not missed
MAX_CORRELATION_COLUMNS = 40


@dataclass(frozen=True, slots=True)
class Target:
    """The target as the relationships need it: a number per row and bins for the score."""

    values: np.ndarray  # classification: 1.0 for the positive class, else 0.0; regression: y
    classes: np.ndarray | None  # classification: each row's class code
    positive: str | None  # classification: the class whose share is shown


def class_distribution(
    series: pl.Series, configured: Any = None
) -> tuple[tuple[str, ...], tuple[int, ...], Any, int]:
    """Class labels (as text) and counts, most frequent first, ties by label; the positive
    class (``loopml.core.labels.positive_label`` over the classes and their counts, the rule
    training uses); and the index of the class whose share the relationships show: the
    positive class, else (multiclass) the most frequent.

    >>> class_distribution(pl.Series("y", ["no", "yes", "no", None]))
    (('no', 'yes'), (2, 1), 'yes', 1)
    >>> class_distribution(pl.Series("y", ["a", "b", "b", "c"]))
    (('b', 'a', 'c'), (2, 1, 1), None, 0)
    """
    return class_counts(series.drop_nulls().value_counts(), configured)


def class_counts(
    counts: pl.DataFrame, configured: Any = None
) -> tuple[tuple[str, ...], tuple[int, ...], Any, int]:
    """``class_distribution`` from the classes' counts (columns: the class, ``count``)."""
    name = counts.columns[0]
    counts = counts.with_columns(pl.col(name).cast(pl.String).alias("_text"))
    counts = counts.sort(["count", "_text"], descending=[True, False])
    texts = tuple(counts["_text"].to_list())
    natives = counts[name].to_list()
    numbers = [int(n) for n in counts["count"]]
    positive = positive_label(natives, configured, counts=numbers) if natives else None
    shown = natives.index(positive) if positive is not None else (0 if natives else -1)
    return texts, tuple(numbers), positive, shown


def encode_target(series: pl.Series, task: str, positive: str | None) -> Target:
    """Rows with a missing target are dropped by the caller; here every row has one."""
    if task == "classification":
        text = series.cast(pl.String).to_numpy()
        _, classes = np.unique(text, return_inverse=True)
        return Target((text == positive).astype(float), classes.astype(np.int64), positive)
    return Target(series.cast(pl.Float64).to_numpy(), None, None)


def relation(
    feature: pl.Series, kind: str, target: Target
) -> tuple[tuple[tuple[str, ...], tuple[float, ...], tuple[int, ...]], float]:
    """(labels, target rate or mean per bin, rows per bin) and the association score."""
    (shown, labels), (fine, fine_labels) = nested_codes(
        feature, kind, bins=RELATION_BINS, top=RELATION_TOP, fine_bins=ASSOCIATION_BINS, fine_top=30
    )
    n = len(labels)
    rows = np.bincount(shown, minlength=n)
    sums = np.bincount(shown, weights=target.values, minlength=n)
    keep = rows > 0  # e.g. no "missing" bin when nothing is missing
    means = np.divide(sums, rows, out=np.zeros(n), where=keep)
    if target.classes is not None:
        score = association(fine, target.classes, len(fine_labels))
    else:
        score = correlation_ratio(fine, target.values, len(fine_labels))
    triple = (
        tuple(label for label, k in zip(labels, keep, strict=True) if k),
        tuple(float(m) for m in means[keep]),
        tuple(int(r) for r in rows[keep]),
    )
    return triple, score


def association(x: np.ndarray, y: np.ndarray, x_levels: int) -> float:
    """Bias-corrected uncertainty coefficient U(Y|X) = I(X;Y) / H(Y) in [0, 1]: the
    Miller-Madow bias b is taken off both, (I - b) / (H - b), so a determining feature
    still scores 1.

    >>> x = np.array([0, 0, 1, 1] * 50); round(association(x, x, 2), 2)
    1.0
    >>> round(association(x, np.array([0, 1] * 100), 2), 2)
    0.0
    """
    n = len(y)
    y_levels = int(y.max()) + 1 if n else 0
    if n == 0 or y_levels < 2:
        return 0.0
    joint = np.bincount(x * y_levels + y, minlength=x_levels * y_levels).astype(float)
    joint = joint.reshape(x_levels, y_levels) / n
    px, py = joint.sum(axis=1), joint.sum(axis=0)
    h_y = _entropy(py)
    if h_y <= 0:
        return 0.0
    mutual = h_y + _entropy(px) - _entropy(joint.ravel())
    bias = (np.count_nonzero(px) - 1) * (np.count_nonzero(py) - 1) / (2 * n)
    if h_y <= bias:
        return 0.0
    return float(np.clip((mutual - bias) / (h_y - bias), 0.0, 1.0))


def correlation_ratio(x: np.ndarray, y: np.ndarray, x_levels: int) -> float:
    """Bias-corrected correlation ratio eta of ``y`` over the groups ``x``, in [0, 1].

    >>> x = np.repeat([0, 1, 2, 3], 50); round(correlation_ratio(x, x * 2.0, 4), 2)
    1.0
    """
    n = len(y)
    if n < 2:
        return 0.0
    largest = float(np.max(np.abs(y)))
    if not 0 < largest < np.inf:
        return 0.0
    y = y / largest  # eta does not depend on the scale; squares of huge values overflow
    total = float(((y - y.mean()) ** 2).sum())
    if total <= 0:
        return 0.0
    rows = np.bincount(x, minlength=x_levels)
    sums = np.bincount(x, weights=y, minlength=x_levels)
    seen = rows > 0
    between = float((sums[seen] ** 2 / rows[seen]).sum() - y.sum() ** 2 / n)
    groups = np.count_nonzero(seen)
    if n <= groups:
        return 0.0
    # epsilon-squared: eta squared less what unrelated groups explain by chance
    within = total - between
    eps2 = (between - (groups - 1) * within / (n - groups)) / total
    return float(np.sqrt(np.clip(eps2, 0.0, 1.0)))


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def correlations(
    frame: pl.DataFrame, names: list[str]
) -> tuple[tuple[str, ...], tuple[tuple[float, ...], ...]] | None:
    """Pearson correlations of numeric and boolean columns (pairwise complete rows)."""
    names = names[:MAX_CORRELATION_COLUMNS]
    if len(names) < 2:
        return None
    x = frame.select(pl.col(n).cast(pl.Float64) for n in names)
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    row = x.select(
        pl.corr(names[i], names[j]).alias(f"{i},{j}") for i, j in pairs
    ).row(0)
    matrix = np.eye(len(names))
    for (i, j), value in zip(pairs, row, strict=True):
        value = 0.0 if value is None or not np.isfinite(value) else float(value)
        matrix[i, j] = matrix[j, i] = value
    return tuple(names), tuple(tuple(round(float(v), 4) for v in r) for r in matrix)
