"""Multivariate drift: how well a small classifier tells reference rows from window rows.

Per-feature statistics miss a shift in how features go together (the same marginals, a new
correlation). A small LightGBM classifier (40 trees of 15 leaves, seeded), trained to say
whether a row came from the reference sample or from the window, sees it: its out-of-fold
ROC AUC (3 folds) is 0.5 when the two are alike and approaches 1 as they separate. Both sides are capped at ``rows`` rows, so the
cost does not grow with the window.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import polars as pl

from loopml.core.records import FeatureReference
from loopml.monitor._bins import clean

MIN_ROWS = 50  # per side; below it the AUC is mostly noise
FOLDS = 3


def domain_auc(
    sample: pl.DataFrame,
    window: pl.DataFrame,
    features: Sequence[FeatureReference],
    *,
    rows: int = 5000,
    seed: int = 0,
) -> float | None:
    """Cross-validated AUC of telling ``sample`` (reference rows) from ``window`` rows by the
    ``features`` both have; None when either side has fewer than 50 rows or no feature.

    >>> import polars as pl
    >>> from loopml.core.records import FeatureReference
    >>> x = FeatureReference(name="x", kind="numeric")
    >>> ref = pl.DataFrame({"x": [float(i % 100) for i in range(600)]})
    >>> domain_auc(ref, ref.with_columns(pl.col("x") + 60), [x]) > 0.8
    True
    """
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    used = [f for f in features if f.name in sample.columns and f.name in window.columns]
    if not used or min(sample.height, window.height) < MIN_ROWS:
        return None
    left = sample.sample(n=min(rows, sample.height), seed=seed)
    right = window.sample(n=min(rows, window.height), seed=seed)
    x = np.column_stack([_column(left, right, f) for f in used])
    y = np.r_[np.zeros(left.height), np.ones(right.height)]
    categorical = [i for i, f in enumerate(used) if f.kind == "categorical"]
    score = np.zeros(y.size)
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    for train, test in folds.split(x, y):  # out-of-fold scores: the AUC of unseen rows
        model = lgb.LGBMClassifier(
            n_estimators=40, num_leaves=15, learning_rate=0.1, max_bin=63, min_child_samples=20,
            random_state=seed, deterministic=True, force_row_wise=True, verbose=-1,
            n_jobs=min(4, os.cpu_count() or 1),
        )  # fmt: skip
        model.fit(x[train], y[train], categorical_feature=categorical or "auto")
        score[test] = model.predict_proba(x[test])[:, 1]
    return round(float(roc_auc_score(y, score)), 6)


def _column(left: pl.DataFrame, right: pl.DataFrame, feature: FeatureReference) -> np.ndarray:
    # frames, not Series: only a frame concat casts both sides to a common type
    both = clean(pl.concat([left.select(feature.name), right.select(feature.name)],
                           how="vertical_relaxed").to_series())  # fmt: skip
    if feature.kind == "numeric":
        return both.cast(pl.Float64).fill_null(np.nan).to_numpy()
    # categories: the reference's kept ones as codes, anything else one "other" code
    kept = list(feature.categories) or both.drop_nulls().cast(pl.String).unique().sort(
    ).head(250).to_list()  # fmt: skip
    text = both.cast(pl.String)
    codes = text.replace_strict(kept, list(range(len(kept))), default=len(kept),
                                return_dtype=pl.Float64)  # fmt: skip
    return codes.fill_null(np.nan).to_numpy()
