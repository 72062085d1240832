"""Compiled forms of fitted final estimators and of the probability calibrator.

A compiled estimator predicts from a float64 feature matrix exactly as the scikit-learn
estimator does, without scikit-learn's per-call checks and dispatch, and is stored as a
JSON-ready dict plus numpy arrays (boosters keep their own text or JSON model), never pickle:
a server loads it without executing code. ``to_spec(arrays, prefix)`` adds the arrays under
keys starting with ``prefix`` (so several models share one ``.npz``) and returns the dict;
``from_spec(spec, arrays)`` reads them back.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from loopml.core.errors import NotCompilable
from loopml.train._calibrate import Calibrator, calibrated
from loopml.train._compiled_trees import ForestArrays, compile_forest

FORMAT = 1
_FORESTS = ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
            "ExtraTreesRegressor")  # fmt: skip
_LINEAR = ("LogisticRegression", "Ridge", "LinearRegression")
_MAKING = threading.Lock()  # one single-row predictor per LightGBM model, made once


def compile_estimator(estimator: Any) -> CompiledEstimator:
    """The compiled form of a fitted estimator; NotCompilable when it has none.

    >>> from sklearn.linear_model import Ridge
    >>> X = np.arange(8.0).reshape(4, 2)
    >>> model = compile_estimator(Ridge().fit(X, X[:, 0]))
    >>> bool(np.allclose(model.predict(X), Ridge().fit(X, X[:, 0]).predict(X)))
    True
    """
    name = type(estimator).__name__
    if name == "EncodedClassifier":
        if not hasattr(estimator, "estimator_"):
            raise NotCompilable("EncodedClassifier is not fitted.")
        inner = estimator.estimator_
        if type(inner).__name__ != "XGBClassifier":
            raise NotCompilable(f"EncodedClassifier wraps {type(inner).__name__}; only "
                                "XGBClassifier is supported.")  # fmt: skip
        return _XGBoost.compile(inner, estimator.classes_)
    if name in _FORESTS:
        if not hasattr(estimator, "estimators_"):
            raise NotCompilable(f"{name} is not fitted.")
        return _Forest.compile(estimator)
    if name in _LINEAR:
        if not hasattr(estimator, "coef_"):
            raise NotCompilable(f"{name} is not fitted.")
        return _Linear.compile(estimator)
    if name in ("LGBMClassifier", "LGBMRegressor"):
        return _LightGBM.compile(estimator)
    if name in ("XGBClassifier", "XGBRegressor"):
        return _XGBoost.compile(estimator, getattr(estimator, "classes_", None))
    supported = ", ".join(sorted((*_FORESTS, *_LINEAR, "LGBMClassifier", "LGBMRegressor",
                                  "XGBClassifier", "XGBRegressor")))  # fmt: skip
    raise NotCompilable(f"{name} has no compiled form; supported: {supported}.")


class CompiledEstimator:
    """A fitted estimator's prediction, without scikit-learn. ``classes_`` is None for a
    regressor."""

    kind: ClassVar[str] = ""

    def __init__(self, *, task: str, n_features: int, classes: Any = None):
        self.task = task
        self.n_features = int(n_features)
        self.classes_ = None if classes is None else np.asarray(classes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.task!r}, n_features={self.n_features})"

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order (classifiers only)."""
        if self.task != "classification":
            raise AttributeError(f"{self!r} is a regressor: it has no predict_proba")
        return self._proba(self._check(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Labels (classifiers) or values (regressors), as the estimator's ``predict``."""
        X = self._check(X)
        if self.task == "classification":
            assert self.classes_ is not None
            return self.classes_.take(self._label_index(X), axis=0)
        return self._values(X)

    def to_spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        """A JSON-ready dict; numeric arrays go into ``arrays`` under keys starting with
        ``prefix``."""
        return {"format": FORMAT, "kind": self.kind, "task": self.task,
                "n_features": self.n_features, "classes": _classes_spec(self.classes_),
                **self._spec(arrays, prefix)}  # fmt: skip

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any],
                  arrays: Mapping[str, np.ndarray]) -> CompiledEstimator:  # fmt: skip
        """The compiled estimator that ``to_spec`` wrote."""
        if spec.get("format") != FORMAT:
            raise ValueError(f"compiled model format {spec.get('format')!r} is not {FORMAT}")
        kinds = {k.kind: k for k in (_Forest, _Linear, _LightGBM, _XGBoost)}
        if spec.get("kind") not in kinds:
            raise ValueError(f"unknown compiled model kind {spec.get('kind')!r}")
        common = {"task": spec["task"], "n_features": spec["n_features"],
                  "classes": _classes_from(spec["classes"])}  # fmt: skip
        return kinds[spec["kind"]]._from_spec(spec, arrays, common)

    def _check(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X must have shape (rows, {self.n_features}); got {X.shape}")
        return X

    def _label_index(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(self._proba(X), axis=1)

    def _proba(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _values(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _from_spec(cls, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                   common: dict[str, Any]) -> CompiledEstimator:  # fmt: skip
        raise NotImplementedError


class _Forest(CompiledEstimator):
    """Random forest or extra trees: the mean of the trees' leaf class fractions or values."""

    kind = "forest"

    def __init__(self, *, arrays: ForestArrays, **common: Any):
        super().__init__(**common)
        self.arrays = arrays

    @classmethod
    def compile(cls, est: Any) -> _Forest:
        if getattr(est, "n_outputs_", 1) != 1:
            raise NotCompilable(f"{type(est).__name__} has {est.n_outputs_} outputs; only "
                                "one is supported.")  # fmt: skip
        task = "classification" if hasattr(est, "classes_") else "regression"
        classes = getattr(est, "classes_", None)
        found = compile_forest(est, task, classes)
        return cls(arrays=ForestArrays(**found), task=task, n_features=est.n_features_in_,
                   classes=classes)  # fmt: skip

    def _proba(self, X: np.ndarray) -> np.ndarray:
        return self.arrays.mean_value(X)

    def _values(self, X: np.ndarray) -> np.ndarray:
        return self.arrays.mean_value(X)

    def _spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        return {**self.arrays.to_spec(arrays, prefix), "prefix": prefix}

    @classmethod
    def _from_spec(cls, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                   common: dict[str, Any]) -> _Forest:  # fmt: skip
        return cls(arrays=ForestArrays.from_spec(spec, arrays, spec["prefix"]), **common)


class _Linear(CompiledEstimator):
    """Logistic regression (expit for two classes, softmax for more, as scikit-learn), ridge
    or least squares: ``X @ coef.T + intercept``."""

    kind = "linear"

    def __init__(self, *, coef: np.ndarray, intercept: np.ndarray, **common: Any):
        super().__init__(**common)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)

    @classmethod
    def compile(cls, est: Any) -> _Linear:
        coef, intercept = np.asarray(est.coef_), np.asarray(est.intercept_)
        classes = getattr(est, "classes_", None)
        if classes is None and coef.ndim != 1:
            raise NotCompilable(f"{type(est).__name__} has {coef.shape[0]} targets; only one "
                                "is supported.")  # fmt: skip
        if coef.dtype != np.float64:
            raise NotCompilable(f"{type(est).__name__} has {coef.dtype} coefficients.")
        task = "regression" if classes is None else "classification"
        return cls(coef=coef, intercept=intercept, task=task, n_features=coef.shape[-1],
                   classes=classes)  # fmt: skip

    def _scores(self, X: np.ndarray) -> np.ndarray:
        scores = X @ self.coef.T + self.intercept
        return scores.reshape(-1) if scores.ndim > 1 and scores.shape[1] == 1 else scores

    def _proba(self, X: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        scores = self._scores(X)
        if scores.ndim == 1:
            p = expit(scores)
            return np.stack([1 - p, p], axis=1)
        scores -= scores.max(axis=1).reshape(-1, 1)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1).reshape(-1, 1)
        return scores

    def _label_index(self, X: np.ndarray) -> np.ndarray:
        scores = self._scores(X)
        return (scores > 0).astype(np.intp) if scores.ndim == 1 else np.argmax(scores, axis=1)

    def _values(self, X: np.ndarray) -> np.ndarray:
        return self._scores(X)

    def _spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        arrays[prefix + "coef"], arrays[prefix + "intercept"] = self.coef, self.intercept
        return {"prefix": prefix}

    @classmethod
    def _from_spec(cls, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                   common: dict[str, Any]) -> _Linear:  # fmt: skip
        p = spec["prefix"]
        return cls(coef=arrays[p + "coef"], intercept=arrays[p + "intercept"], **common)


class _LightGBM(CompiledEstimator):
    """A LightGBM booster reloaded from its own model text, predicting on one thread."""

    kind = "lightgbm"

    def __init__(self, *, model: str, num_iteration: int, **common: Any):
        import lightgbm as lgb

        super().__init__(**common)
        self.model, self.num_iteration = model, int(num_iteration)
        self.booster = lgb.Booster(model_str=model)
        self._fast: _FastRow | None = None  # the single-row predictor, made on first use

    @classmethod
    def compile(cls, est: Any) -> _LightGBM:
        name = type(est).__name__
        try:
            booster = est.booster_
        except Exception as exc:  # LGBMNotFittedError
            raise NotCompilable(f"{name} is not fitted.") from exc
        if callable(getattr(est, "_objective", None)):
            raise NotCompilable(f"{name} has a custom objective function.")
        task = "classification" if name == "LGBMClassifier" else "regression"
        return cls(model=booster.model_to_string(num_iteration=-1),
                   num_iteration=int(booster.best_iteration), task=task,
                   n_features=booster.num_feature(),
                   classes=est.classes_ if task == "classification" else None)  # fmt: skip

    def _raw(self, X: np.ndarray) -> np.ndarray:
        if X.shape[0] == 1:
            return self._one_row(X)
        return self.booster.predict(X, num_iteration=self.num_iteration, num_threads=1)

    def _one_row(self, X: np.ndarray) -> np.ndarray:
        """One row through LightGBM's own single-row entry point
        (``LGBM_BoosterPredictForMatSingleRowFast``): the same predictor as ``predict``,
        without its per-call checks and conversions (~10 us instead of ~60 us)."""
        import ctypes

        from lightgbm.basic import _LIB, _safe_call

        fast = self._fast
        if fast is None:
            with _MAKING:
                if self._fast is None:
                    self._fast = _FastRow(self.booster, self.n_features, self.num_iteration)
                fast = self._fast
        row = np.ascontiguousarray(X[0], dtype=np.float64)
        out = np.empty(fast.width, dtype=np.float64)
        with fast.lock:  # the prepared predictor is not thread-safe (the server's pool)
            _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFast(
                fast.handle, row.ctypes.data_as(ctypes.c_void_p), ctypes.byref(fast.length),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))))
        return out.reshape(1, -1) if out.size > 1 else out  # as predict: (rows, classes)

    def _proba(self, X: np.ndarray) -> np.ndarray:
        return _two_columns(self._raw(X))

    def _values(self, X: np.ndarray) -> np.ndarray:
        return self._raw(X)

    def _spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        return {"model": self.model, "num_iteration": self.num_iteration}

    @classmethod
    def _from_spec(cls, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                   common: dict[str, Any]) -> _LightGBM:  # fmt: skip
        return cls(model=spec["model"], num_iteration=spec["num_iteration"], **common)


class _FastRow:
    """LightGBM's prepared single-row prediction for a booster: normal output (as
    ``predict``), the same iterations and one thread, float64 rows of ``n_features``. One
    call at a time (``lock``): two threads in it at once crash the process."""

    def __init__(self, booster: Any, n_features: int, num_iteration: int):
        import ctypes

        self.lock = threading.Lock()
        from lightgbm.basic import _LIB, _c_str, _safe_call

        self.handle = ctypes.c_void_p()
        self.length = ctypes.c_int64(0)
        self.width = max(1, booster.num_model_per_iteration())
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(0), ctypes.c_int(0),  # C_API_PREDICT_NORMAL, start
            ctypes.c_int(num_iteration), ctypes.c_int(1),  # C_API_DTYPE_FLOAT64
            ctypes.c_int32(n_features), _c_str("num_threads=1"), ctypes.byref(self.handle)))
        self._free = _LIB.LGBM_FastConfigFree

    def __del__(self) -> None:
        if self.handle:
            self._free(self.handle)


class _XGBoost(CompiledEstimator):
    """An XGBoost booster reloaded from its JSON model, predicting in place on one thread over
    the rounds the wrapper uses (up to the best iteration when it stopped early)."""

    kind = "xgboost"
    _objectives = ("binary:logistic", "multi:softprob")

    def __init__(self, *, model: str, iteration_range: Any, missing: float | None,
                 **common: Any):  # fmt: skip
        import xgboost as xgb

        super().__init__(**common)
        self.model, self.missing = model, missing
        self.iteration_range = (int(iteration_range[0]), int(iteration_range[1]))
        self.booster = xgb.Booster()
        self.booster.load_model(bytearray(model.encode()))
        self.booster.set_param({"nthread": 1})

    @classmethod
    def compile(cls, est: Any, classes: Any) -> _XGBoost:
        name = type(est).__name__
        try:
            booster = est.get_booster()
        except Exception as exc:  # xgboost raises NotFittedError (a ValueError) or its own
            raise NotCompilable(f"{name} is not fitted.") from exc
        if est.booster not in (None, "gbtree", "dart"):
            raise NotCompilable(f"{name} uses booster {est.booster!r}; only trees are "
                                "supported.")  # fmt: skip
        if est.enable_categorical or callable(est.objective):
            raise NotCompilable(f"{name} has native categoricals or a custom objective.")
        task = "classification" if name == "XGBClassifier" else "regression"
        if task == "classification" and est.objective not in cls._objectives:
            raise NotCompilable(f"{name} has objective {est.objective!r}; supported: "
                                f"{', '.join(cls._objectives)}.")  # fmt: skip
        try:  # the rounds the wrapper predicts with (XGBModel._get_iteration_range)
            rounds = (0, int(est.best_iteration) + 1)
        except AttributeError:
            rounds = (0, 0)
        missing = None if est.missing is None or math.isnan(est.missing) else float(est.missing)
        return cls(model=bytes(booster.save_raw("json")).decode(),
                   iteration_range=rounds, missing=missing, task=task,
                   n_features=est.n_features_in_, classes=classes)  # fmt: skip

    def _raw(self, X: np.ndarray) -> np.ndarray:
        missing = np.nan if self.missing is None else self.missing
        return self.booster.inplace_predict(X, iteration_range=self.iteration_range,
                                            predict_type="value", missing=missing,
                                            validate_features=False)  # fmt: skip

    def _proba(self, X: np.ndarray) -> np.ndarray:
        return _two_columns(self._raw(X))

    def _label_index(self, X: np.ndarray) -> np.ndarray:
        result = self._raw(X)
        return (result > 0.5).astype(np.intp) if result.ndim == 1 else np.argmax(result, axis=1)

    def _values(self, X: np.ndarray) -> np.ndarray:
        return self._raw(X)

    def _spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        return {"model": self.model, "iteration_range": list(self.iteration_range),
                "missing": self.missing}  # fmt: skip

    @classmethod
    def _from_spec(cls, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                   common: dict[str, Any]) -> _XGBoost:  # fmt: skip
        return cls(model=spec["model"], iteration_range=spec["iteration_range"],
                   missing=spec["missing"], **common)  # fmt: skip


def _two_columns(result: np.ndarray) -> np.ndarray:
    """A booster's probabilities as the wrapper's ``predict_proba`` gives them: a binary
    booster's one column becomes two."""
    return np.vstack((1.0 - result, result)).transpose() if result.ndim == 1 else result


def _classes_spec(classes: np.ndarray | None) -> dict[str, Any] | None:
    """Class labels with their numpy dtype, so str, int and bool labels come back as such."""
    if classes is None:
        return None
    values = classes.tolist()
    if not all(isinstance(v, (str, int, float)) for v in values):
        raise NotCompilable(f"class labels {values[:3]!r} are not str, int, float or bool.")
    return {"dtype": classes.dtype.str, "values": values}


def _classes_from(spec: Mapping[str, Any] | None) -> np.ndarray | None:
    return None if spec is None else np.asarray(spec["values"], dtype=np.dtype(spec["dtype"]))


def compile_calibrator(calibrator: Calibrator) -> CompiledCalibrator:
    """The compiled form of a fitted ``Calibrator``: ``transform`` gives the same
    probabilities.

    >>> cal = Calibrator("temperature")
    >>> cal.params_ = {"temperature": 2.0}
    >>> p = np.array([[0.2, 0.8]])
    >>> bool(np.array_equal(compile_calibrator(cal).transform(p), cal.transform(p)))
    True
    """
    params = calibrator.params_
    if calibrator.method == "temperature" and "temperature" in params:
        return CompiledCalibrator("temperature", {"temperature": float(params["temperature"])})
    if calibrator.method == "sigmoid" and "a" in params:
        return CompiledCalibrator("sigmoid", {"a": float(params["a"]), "b": float(params["b"])})
    iso = params.get("isotonic")
    if calibrator.method == "isotonic" and hasattr(iso, "X_thresholds_"):
        order = np.argsort(iso.X_thresholds_, kind="mergesort")  # as interp1d sorts them
        return CompiledCalibrator(
            "isotonic", {"x_min": float(iso.X_min_), "x_max": float(iso.X_max_),
                         "out_of_bounds": iso.out_of_bounds},
            x=np.asarray(iso.X_thresholds_, dtype=np.float64)[order],
            y=np.asarray(iso.y_thresholds_, dtype=np.float64)[order])  # fmt: skip
    raise NotCompilable(f"{calibrator!r} is not fitted.")


class CompiledCalibrator:
    """A calibration map from class probabilities to calibrated ones, as ``Calibrator``."""

    def __init__(self, method: str, params: Mapping[str, Any], *, x: np.ndarray | None = None,
                 y: np.ndarray | None = None):  # fmt: skip
        self.method, self.params = method, dict(params)
        self.x, self.y = x, y

    def __repr__(self) -> str:
        return f"CompiledCalibrator({self.method!r})"

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probabilities: same shape, each row summing to 1."""
        return calibrated(self.method, proba, self.params, self._isotonic)

    def _isotonic(self, t: np.ndarray) -> np.ndarray:
        """IsotonicRegression.predict: clip, then scipy's interp1d (linear) arithmetic."""
        x, y, bounds = self.x, self.y, self.params["out_of_bounds"]
        assert x is not None and y is not None
        if bounds == "clip":
            t = np.clip(t, self.params["x_min"], self.params["x_max"])
        if y.size == 1:
            return y.repeat(t.shape)
        hi = np.searchsorted(x, t).clip(1, x.size - 1)
        lo = hi - 1
        out = (y[hi] - y[lo]) / (x[hi] - x[lo]) * (t - x[lo]) + y[lo]
        outside = (t < x[0]) | (t > x[-1])
        if bounds == "raise" and outside.any():
            raise ValueError("A value in x_new is outside the interpolation range.")
        out[outside] = np.nan
        return out

    def to_spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        """A JSON-ready dict; the isotonic thresholds go into ``arrays`` under ``prefix``."""
        if self.x is not None and self.y is not None:
            arrays[prefix + "x"], arrays[prefix + "y"] = self.x, self.y
        return {"format": FORMAT, "kind": "calibrator", "method": self.method,
                "params": self.params, "prefix": prefix}  # fmt: skip

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any],
                  arrays: Mapping[str, np.ndarray]) -> CompiledCalibrator:  # fmt: skip
        """The compiled calibrator that ``to_spec`` wrote."""
        if spec.get("format") != FORMAT or spec.get("kind") != "calibrator":
            raise ValueError(f"not a compiled calibrator of format {FORMAT}: "
                             f"{spec.get('kind')!r}, format {spec.get('format')!r}")  # fmt: skip
        p = spec["prefix"]
        x = arrays[p + "x"] if spec["method"] == "isotonic" else None
        y = arrays[p + "y"] if spec["method"] == "isotonic" else None
        return cls(spec["method"], spec["params"], x=x, y=y)
