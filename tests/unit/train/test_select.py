"""Feature selection: useless columns dropped with reasons, importance drops checked by CV."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from loopml.quality import infer_contract
from loopml.train._select import drop_useless, select_by_importance
from tests.conftest import penguins_frame, sklearn_frame


def with_useless_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` plus an id, a text id, a copy of its first column, a constant and an empty
    column, and two nearly unique columns that are not ids."""
    n = frame.height
    rng = np.random.default_rng(0)
    first = frame.columns[0]
    return frame.with_columns(
        pl.Series("row_number", np.arange(1000, 1000 + n)),
        pl.Series("ticket", [f"T-{i:06d}-{rng.integers(1e6)}" for i in range(n)]),
        pl.col(first).alias("copy_of_first"),
        pl.lit("same").alias("constant"),
        pl.lit(None, dtype=pl.Float64).alias("empty"),
        pl.Series("income_cents", rng.integers(0, 10**9, n)),  # nearly unique, sparse: kept
        pl.Series("customer_id", rng.choice(10**9, n, replace=False)),  # sparse, named an id
    )


def test_id_duplicate_constant_and_empty_columns_are_dropped_with_reasons() -> None:
    """On breast cancer with useless columns added, exactly those go, each with a sentence
    that says what was found; the 30 measurements and the sparse integer stay, in order."""
    frame = with_useless_columns(sklearn_frame("breast_cancer"))
    contract = infer_contract(frame, source="bc", target="target")
    kept, dropped = drop_useless(frame, frame.columns, contract, target="target")
    reasons = dict(dropped)
    assert set(reasons) == {"row_number", "ticket", "copy_of_first", "constant", "empty",
                            "customer_id"}
    original = sklearn_frame("breast_cancer").drop("target").columns
    assert kept == [*original, "income_cents"]
    assert "569 of 569 values distinct" in reasons["row_number"]
    assert "numbered densely" in reasons["row_number"]
    assert "569 of 569 values distinct" in reasons["ticket"]
    assert "name reads as an identifier" in reasons["customer_id"]
    assert reasons["copy_of_first"] == (
        f"an exact copy of column {original[0]!r}: it adds nothing new")
    assert reasons["constant"] == "constant: all 569 of its values are 'same'"
    assert reasons["empty"] == "every one of its 569 values is missing"


def test_a_column_with_one_value_and_missing_values_is_constant_and_real_data_keeps_all() -> None:
    """Penguins lose nothing; a column with one value besides missing ones is constant."""
    frame = penguins_frame().drop("species")
    contract = infer_contract(frame, source="p", target=None)
    assert drop_useless(frame, frame.columns, contract, target=None) == (frame.columns, [])
    half = frame.with_columns(pl.when(pl.col("year") > 2007).then(pl.lit(5)).alias("flag"))
    contract = infer_contract(half, source="p", target=None)
    kept, dropped = drop_useless(half, half.columns, contract, target=None)
    assert kept == frame.columns and dropped[0][0] == "flag"
    assert dropped[0][1].startswith("constant: all") and "are missing" in dropped[0][1]


def test_importance_drops_are_kept_only_when_cv_does_not_get_worse() -> None:
    """Breast cancer plus noise columns: a real cross-validated score keeps the noise out, in
    at most two CV calls, and the reasons quote the scores with and without."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = sklearn_frame("breast_cancer")
    rng = np.random.default_rng(1)
    frame = frame.with_columns(*[pl.Series(f"noise{i}", rng.normal(size=frame.height))
                                 for i in range(8)])
    columns = [c for c in frame.columns if c != "target"]
    y = frame["target"].to_numpy()
    calls: list[list[str]] = []

    def cv(cols: list[str]) -> float:
        calls.append(cols)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        return float(cross_val_score(model, frame.select(cols).to_numpy(), y, cv=5,
                                     scoring="roc_auc").mean())

    forest = RandomForestClassifier(200, random_state=0).fit(frame.select(columns).to_numpy(), y)
    baseline = cv(columns)
    calls.clear()
    kept, dropped = select_by_importance(columns, forest.feature_importances_, cv,
                                         baseline=baseline, greater_is_better=True,
                                         tolerance=0.002)
    assert 1 <= len(calls) <= 2
    assert len(kept) + len(dropped) == len(columns) and kept
    assert sum(c.startswith("noise") for c, _ in dropped) >= 4
    assert all("out-of-fold score" in why and f"{baseline:.4f}" in why for _, why in dropped)


def test_importance_drops_that_hurt_are_undone() -> None:
    """A score that falls without a column keeps every column; a smaller-is-better metric
    compares the other way; one feature is never dropped."""
    columns = ["a", "b", "c", "d", "e"]
    importances = [0.4, 0.3, 0.2, 0.1, 0.0]
    calls = []

    def worse(cols: list[str]) -> float:
        calls.append(cols)
        return 0.80 if len(cols) < 5 else 0.9

    assert select_by_importance(columns, importances, worse, baseline=0.9,
                                greater_is_better=True) == (columns, [])
    assert calls == [["a", "b", "c", "d"]]  # the zero drop failed: nothing more is tried
    kept, dropped = select_by_importance(columns, importances, lambda cols: 0.30,
                                         baseline=0.31, greater_is_better=False)
    assert kept == ["a", "b", "c"] and [c for c, _ in dropped] == ["e", "d"]
    assert select_by_importance(["a"], [0.0], worse, baseline=0.9,
                                greater_is_better=True) == (["a"], [])
    with pytest.raises(ValueError):
        select_by_importance(["a", "b"], [1.0], worse, baseline=0.9, greater_is_better=True)
