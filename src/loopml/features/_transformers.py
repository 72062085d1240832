"""Transformers the feature pipeline needs beyond scikit-learn's own."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import TargetEncoder

from loopml.core.convert import to_type

_DATETIME_PARTS = ("year", "month", "day", "weekday", "hour", "dayofyear")
_DATE_PARTS = ("year", "month", "day", "weekday", "dayofyear")


class DateParts(TransformerMixin, BaseEstimator):
    """Turn date and datetime columns into numbers: year, month, day, weekday, hour...

    Missing dates give NaN in every part (an imputer after this step fills them).

    >>> import polars as pl, datetime as dt
    >>> X = pl.DataFrame({"t": [dt.datetime(2013, 1, 7, 18)]})
    >>> DateParts(with_time=True).fit(X).transform(X).tolist()
    [[2013.0, 1.0, 7.0, 1.0, 18.0, 7.0]]
    """

    def __init__(self, *, with_time: bool = True):
        self.with_time = with_time

    def fit(self, X: Any, y: Any = None) -> DateParts:
        self.feature_names_in_ = np.asarray(_columns(X), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: Any) -> np.ndarray:
        import polars as pl

        frame = X if isinstance(X, pl.DataFrame) else pl.from_pandas(X)
        exprs = []
        for name in frame.columns:
            col = pl.col(name)
            if frame.schema[name] == pl.String:  # text, as the contract's converter reads it
                col = to_type(col, pl.String, "datetime")
            for part in self._parts():
                e = {
                    "year": col.dt.year(),
                    "month": col.dt.month(),
                    "day": col.dt.day(),
                    "weekday": col.dt.weekday(),
                    "hour": col.dt.hour(),
                    "dayofyear": col.dt.ordinal_day(),
                }[part]
                exprs.append(e.cast(pl.Float64).alias(f"{name}_{part}"))
        return frame.select(exprs).to_numpy().astype(np.float64)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = self.feature_names_in_ if input_features is None else input_features
        return np.asarray([f"{n}_{p}" for n in names for p in self._parts()], dtype=object)

    def _parts(self) -> tuple[str, ...]:
        return _DATETIME_PARTS if self.with_time else _DATE_PARTS


class ToFloat(TransformerMixin, BaseEstimator):
    """Booleans (and anything numeric) to float64, with missing values as NaN."""

    def fit(self, X: Any, y: Any = None) -> ToFloat:
        self.feature_names_in_ = np.asarray(_columns(X), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: Any) -> np.ndarray:
        import polars as pl

        if isinstance(X, pl.DataFrame):
            return X.select(pl.all().cast(pl.Float64)).to_numpy()
        return np.asarray(X, dtype=np.float64)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.feature_names_in_ if input_features is None else np.asarray(input_features)


class ToText(TransformerMixin, BaseEstimator):
    """Text columns to a numpy object array with missing values as the string '(missing)'.

    Encoders then treat "missing" as one more category, identically in fit and predict.
    """

    def fit(self, X: Any, y: Any = None) -> ToText:
        self.feature_names_in_ = np.asarray(_columns(X), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: Any) -> np.ndarray:
        import polars as pl

        if isinstance(X, pl.DataFrame):
            return X.select(pl.all().cast(pl.String).fill_null("(missing)")).to_numpy()
        arr = np.asarray(X, dtype=object)
        return np.where(arr == None, "(missing)", arr).astype(str).astype(object)  # noqa: E711

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.feature_names_in_ if input_features is None else np.asarray(input_features)


def _columns(X: Any) -> list[str]:
    if hasattr(X, "columns"):
        return [str(c) for c in X.columns]
    return [f"x{i}" for i in range(np.asarray(X).shape[1])]


class FastTargetEncoder(TargetEncoder):
    """scikit-learn's TargetEncoder with a ``transform`` that looks categories up in a dict.

    scikit-learn rebuilds a set of every known category on each ``transform`` call, which
    costs milliseconds per served row for a column with thousands of values (tail numbers,
    ids). Fitting, cross-fitting and the numbers produced are unchanged.
    """

    def transform(self, X: Any) -> np.ndarray:
        values = np.asarray(X, dtype=object)
        if values.ndim != 2 or values.shape[1] != len(self.categories_):
            return super().transform(X)
        lookups = self.__dict__.get("_lookups")
        if lookups is None:
            lookups = [{v: i for i, v in enumerate(cats.tolist())} for cats in self.categories_]
            self.__dict__["_lookups"] = lookups
        ordinal = np.empty(values.shape, dtype=np.intp)
        for j, lookup in enumerate(lookups):
            ordinal[:, j] = [lookup.get(v, -1) for v in values[:, j].tolist()]
        unknown = ordinal < 0
        ordinal[unknown] = 0
        if self.target_type_ == "multiclass":
            out = np.empty((values.shape[0], values.shape[1] * len(self.classes_)), np.float64)
        else:
            out = np.empty(values.shape, dtype=np.float64)
        self._transform_X_ordinal(
            out, ordinal, unknown, slice(None), self.encodings_, self.target_mean_
        )
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_lookups", None)  # rebuilt on first use
        return state
