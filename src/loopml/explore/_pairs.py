"""Associations between pairs of columns, on at most ``PAIR_ROWS`` sampled rows: Spearman
rank correlation of numeric columns, Cramér's V between categorical columns and the
correlation ratio of each numeric column over each categorical one.

>>> import polars as pl
>>> f = pl.DataFrame({"a": ["x", "y"] * 100, "b": ["p", "q"] * 100, "n": [1.0, 5.0] * 100})
>>> round(cramers_v(_code(f["a"]), _code(f["b"])), 2)
1.0
"""

from __future__ import annotations

import numpy as np
import polars as pl

from loopml.core.records import Matrix
from loopml.explore._bins import codes
from loopml.explore._target import correlation_ratio, correlations

MAX_CATEGORICAL = 20
MAX_NUMERIC = 40
PAIR_ROWS = 50_000  # rows the matrices use: their standard error is then about 0.005
CATEGORY_LEVELS = 30  # top categories kept per column; the rest is "other"


def spearman(sample: pl.DataFrame, numeric: list[str]) -> Matrix | None:
    """Pearson correlation of the columns' ranks (ties averaged; each column ranked over its
    own present values, then pairs compared on the rows where both are present)."""
    names = numeric[:MAX_NUMERIC]
    if len(names) < 2:
        return None
    ranked = sample.select(pl.col(n).cast(pl.Float64).rank("average") for n in names)
    found = correlations(ranked, names)
    if found is None:
        return None
    return Matrix(method="spearman", x=found[0], y=found[0], values=found[1])


def _code(series: pl.Series) -> np.ndarray:
    """Each row's category code among the top categories ("other" one more; missing: -1)."""
    found, labels = codes(series, "categorical", bins=0, top=CATEGORY_LEVELS)
    return np.where(found == len(labels) - 1, -1, found)


def cramers_v(x: np.ndarray, y: np.ndarray) -> float:
    """Bias-corrected Cramér's V (Bergsma 2013) of two code arrays, rows with a missing
    code (-1) left out; 0 for independent columns, 1 when one determines the other."""
    keep = (x >= 0) & (y >= 0)
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 2:
        return 0.0
    levels = int(y.max()) + 1
    table = np.bincount(x * levels + y, minlength=(int(x.max()) + 1) * levels)
    table = table.reshape(-1, levels).astype(float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]  # levels seen
    r, k = table.shape
    if r < 2 or k < 2:
        return 0.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
    r_corr = r - (r - 1) ** 2 / (n - 1)
    k_corr = k - (k - 1) ** 2 / (n - 1)
    denominator = min(k_corr - 1, r_corr - 1)
    if denominator <= 0:
        return 0.0
    return float(np.clip(np.sqrt(phi2 / denominator), 0.0, 1.0))


def categorical_matrices(
    sample: pl.DataFrame, categorical: list[str], numeric: list[str]
) -> tuple[Matrix | None, Matrix | None]:
    """Cramér's V between the ``categorical`` columns, and the correlation ratio (eta) of
    each ``numeric`` column over each categorical one."""
    cats = categorical[:MAX_CATEGORICAL]
    if not cats:
        return None, None
    coded = {name: _code(sample[name]) for name in cats}
    v = None
    if len(cats) >= 2:
        m = np.eye(len(cats))
        for i in range(len(cats)):
            for j in range(i + 1, len(cats)):
                m[i, j] = m[j, i] = cramers_v(coded[cats[i]], coded[cats[j]])
        v = Matrix(method="cramers_v", x=tuple(cats), y=tuple(cats), values=_rounded(m))
    nums = numeric[:MAX_NUMERIC]
    eta = None
    if nums:
        values = {n: sample[n].cast(pl.Float64).to_numpy() for n in nums}
        m = np.zeros((len(cats), len(nums)))
        for i, c in enumerate(cats):
            for j, n in enumerate(nums):
                keep = (coded[c] >= 0) & ~np.isnan(values[n])
                group = coded[c][keep]
                levels = int(group.max()) + 1 if group.size else 0
                m[i, j] = correlation_ratio(group, values[n][keep], levels) if levels else 0.0
        eta = Matrix(method="correlation_ratio", x=tuple(nums), y=tuple(cats),
                     values=_rounded(m))  # fmt: skip
    return v, eta


def _rounded(m: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(round(float(v), 4) for v in row) for row in m)
