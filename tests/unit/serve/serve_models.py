"""Small real models for the serve tests: a flights-like contract with every column type,
generated data, and scikit-learn pipelines that take Polars frames of raw columns.

Kept out of conftest.py so that a server subprocess can unpickle the pipelines' functions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from loopml.core.contract import ColumnSpec, Contract, polars_schema
from loopml.core.records import ModelBundle, Reference

CARRIERS = ("AA", "B6", "DL", "UA")
FEATURES = ("distance", "dep_hour", "carrier", "origin", "weekend", "scheduled", "day")
CONTRACT = Contract(
    source="flights",
    columns=(
        ColumnSpec(name="distance", type="float", min=0, max=10_000, description="Miles flown"),
        ColumnSpec(name="dep_hour", type="integer", min=0, max=24),
        ColumnSpec(name="carrier", type="category", allowed=CARRIERS),
        ColumnSpec(name="origin", type="string"),
        ColumnSpec(name="weekend", type="boolean"),
        ColumnSpec(name="scheduled", type="datetime"),
        ColumnSpec(name="day", type="date"),
        ColumnSpec(name="late", type="category", allowed=("late", "on_time")),
        ColumnSpec(name="arr_delay", type="float"),
    ),
)


def flights(n: int = 300, seed: int = 0) -> pl.DataFrame:
    """Generated flights with features, a class target ``late`` and a value ``arr_delay``."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    hours = rng.integers(5, 23, n)
    frame = pl.DataFrame(
        {
            "distance": rng.uniform(100, 3000, n),
            "dep_hour": hours,
            "carrier": rng.choice(CARRIERS, n),
            "origin": rng.choice(["JFK", "LGA", "EWR"], n),
            "weekend": rng.random(n) < 0.3,
            "scheduled": [start + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 60, n)],
            "day": [date(2024, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 60, n)],
        },
        schema=polars_schema(CONTRACT, FEATURES),
    )
    delay = 3.0 * (hours - 12) + rng.normal(0, 5, n)
    return frame.with_columns(
        pl.Series("arr_delay", delay),
        pl.Series("late", np.where(delay > 5, "late", "on_time")),
    )


def time_parts(X: pl.DataFrame) -> np.ndarray:
    """Booleans, dates and datetimes as numbers (nulls stay NaN for the imputer)."""
    cols = []
    for name, dtype in X.schema.items():
        s = X[name]
        if isinstance(dtype, pl.Datetime):
            cols += [s.dt.hour(), s.dt.weekday()]
        elif dtype == pl.Date:
            cols.append(s.dt.weekday())
        else:
            cols.append(s)
    return np.column_stack([c.cast(pl.Float64).to_numpy() for c in cols])


def features_step():
    """The feature part of every test pipeline: impute+scale, one-hot, time parts."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                ["distance", "dep_hour"],
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(missing_values=None, strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                ["carrier", "origin"],
            ),
            (
                "time",
                make_pipeline(FunctionTransformer(time_parts), SimpleImputer(strategy="median")),
                ["weekend", "scheduled", "day"],
            ),
        ]
    )


def bundle(task: str, *, estimator=None, data: pl.DataFrame | None = None, **fields) -> ModelBundle:
    """A fitted bundle for ``task``: LogisticRegression, Ridge or KMeans unless given."""
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline

    data = flights() if data is None else data
    default, target = {
        "classification": (LogisticRegression(max_iter=500), "late"),
        "regression": (Ridge(), "arr_delay"),
        "clustering": (KMeans(n_clusters=3, n_init=3, random_state=0), None),
    }[task]
    model = Pipeline([("features", features_step()), ("model", estimator or default)])
    model.fit(data.select(FEATURES), None if target is None else data[target].to_numpy())
    classes = tuple(model.classes_) if task == "classification" else None
    values = {
        "model": model,
        "contract": CONTRACT,
        "task": task,
        "target": target,
        "feature_columns": FEATURES,
        "classes": classes,
        "positive_label": "late" if task == "classification" else None,
        "reference": Reference(features=()),
    }
    values.update(fields)
    return ModelBundle(**values)


def record(**changes) -> dict:
    """One valid request record; ``changes`` replace values or add keys."""
    out = {
        "distance": 1200.5,
        "dep_hour": 18,
        "carrier": "DL",
        "origin": "JFK",
        "weekend": False,
        "scheduled": "2024-02-01T18:00:00Z",
        "day": "2024-02-01",
    }
    out.update(changes)
    return out
