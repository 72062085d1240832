"""Multivariate drift: how well a small classifier tells reference rows from window rows.

Per-feature statistics miss a shift in how features go together (the same marginals, a new
correlation). A gradient-boosted classifier, trained to say whether a row came from the
reference sample or from the window, sees it: its cross-validated ROC AUC is 0.5 when the two
are alike and approaches 1 as they separate. Both sides are capped at ``rows`` rows, so the
cost does not grow with the window.
"""

from __future__ import annotations

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
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    used = [f for f in features if f.name in sample.columns and f.name in window.columns]
    if not used or min(sample.height, window.height) < MIN_ROWS:
        return None
    left = sample.sample(n=min(rows, sample.height), seed=seed)
    right = window.sample(n=min(rows, window.height), seed=seed)
    x = np.column_stack([_column(left, right, f) for f in used])
    y = np.r_[np.zeros(left.height), np.ones(right.height)]
    model = HistGradientBoostingClassifier(
        max_iter=40, max_leaf_nodes=15, learning_rate=0.1, early_stopping=False,
        categorical_features=[f.kind == "categorical" for f in used], random_state=seed,
    )  # fmt: skip
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    score = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return round(float(roc_auc_score(y, score)), 6)


def _column(left: pl.DataFrame, right: pl.DataFrame, feature: FeatureReference) -> np.ndarray:
    both = pl.concat([left[feature.name], right[feature.name]], how="vertical_relaxed"
                     ) if left[feature.name].dtype != right[feature.name].dtype else pl.concat(
        [left[feature.name], right[feature.name]])  # fmt: skip
    both = clean(both)
    if feature.kind == "numeric":
        return both.cast(pl.Float64).fill_null(np.nan).to_numpy()
    # categories: the reference's kept ones as codes, anything else one "other" code
    kept = list(feature.categories) or both.drop_nulls().cast(pl.String).unique().sort(
    ).head(250).to_list()  # fmt: skip
    text = both.cast(pl.String)
    codes = text.replace_strict(kept, list(range(len(kept))), default=len(kept),
                                return_dtype=pl.Float64)  # fmt: skip
    return codes.fill_null(np.nan).to_numpy()
