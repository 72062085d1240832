"""``LoopmlClassifier`` and ``LoopmlRegressor``: the model ``loopml.fit`` returns, as a
scikit-learn estimator (``clone``, ``cross_val_score`` and ``Pipeline`` work on it).

``fit`` runs a project run's model steps on the frame (``loopml.pipeline._fit.fit_frame``);
``save`` writes a model bundle (``loopml.core.bundle``) plus the leaderboard, and
``load_estimator`` reads one back. Jupyter shows the summary and leaderboard as tables.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from loopml.core.errors import IntegrityError, SchemaError

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.records import Leaderboard

LEADERBOARD_FILE = "leaderboard.json"
FIT_FILE = "fit.json"
FEW_ROWS = 64  # up to this many rows the compiled form scores (its per-call cost is small)


class LoopmlEstimator(BaseEstimator):
    """The shared part of ``LoopmlClassifier`` and ``LoopmlRegressor``.

    Parameters are a project's ``training`` settings: ``time_budget`` (seconds for the whole
    fit), ``metric``, ``seed``, ``deterministic`` and ``training`` (any other setting of the
    section, as a dict, e.g. ``{"learners": ["lightgbm", "linear"]}``).
    """

    _task = ""

    def __init__(
        self, *, time_budget: float = 60, metric: str = "auto", seed: int = 0,
        deterministic: bool = False, training: dict[str, Any] | None = None,
    ):
        self.time_budget = time_budget
        self.metric = metric
        self.seed = seed
        self.deterministic = deterministic
        self.training = training

    # ---- learning ----------------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> LoopmlEstimator:
        """Search models for ``y`` from ``X`` within ``time_budget`` seconds (see
        ``loopml.fit``, which also picks the task)."""
        from loopml.pipeline._fit import resolve_task, training_frame, usable_rows

        frame, target = training_frame(X, y, target=None)
        frame, dropped = usable_rows(frame, target)
        _, reason = resolve_task(frame, target, self._task)
        self._fit_frame(frame, target, reason=reason, dropped=dropped, array_input=not _named(X))
        return self

    def _fit_frame(
        self, frame: pl.DataFrame, target: str, *, reason: str, dropped: int,
        array_input: bool = False,
    ) -> LoopmlEstimator:
        from loopml.pipeline._fit import fit_frame

        settings = {"time_budget": self.time_budget, "metric": self.metric, "seed": self.seed,
                    "deterministic": self.deterministic, "training": self.training}
        fitted = fit_frame(frame, target, task=self._task, settings=settings)
        result = fitted.result
        self.model_ = result.model
        self.contract_ = fitted.contract
        self.leaderboard_ = result.leaderboard
        self.evaluation_ = fitted.evaluation
        self.target_ = target
        self.task_ = self._task
        self.task_reason_ = reason
        self.positive_label_ = result.positive_label
        self.split_sizes_ = fitted.split_sizes
        self.rows_dropped_ = dropped
        self.fit_seconds_ = fitted.seconds
        self.compiled_ = fitted.compiled
        self.serving_form_ = fitted.serving
        self._set_columns(list(fitted.contract.names), array_input=array_input)
        if self._task == "classification":
            self.classes_ = np.asarray(result.model.classes_)
        return self

    def _set_columns(self, columns: list[str], *, array_input: bool) -> None:
        self.feature_columns_ = tuple(columns)
        self.n_features_in_ = len(columns)
        if not array_input:
            self.feature_names_in_ = np.asarray(columns, dtype=object)

    # ---- predicting --------------------------------------------------------------------------

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (classifier) or values (regressor), one per row of ``X``."""
        features = self._features(X)  # checks that the model is fitted first
        out = np.asarray(self._scorer(features.height).predict(features))
        if self._task == "classification":  # the labels in the model's type, whichever form
            return out.astype(self.classes_.dtype, copy=False)
        return out

    def _scorer(self, rows: int) -> Any:
        """The compiled form for a few rows (no per-call overhead), and for many when it
        scored the test rows faster than the model; else the scikit-learn model."""
        compiled = getattr(self, "compiled_", None)
        if compiled is None:
            return self.model_
        timed = (getattr(self, "serving_form_", None) or {}).get("batch_ms") or {}
        slower = timed.get("compiled", 0.0) > timed.get("scikit-learn", math.inf)
        return self.model_ if rows > FEW_ROWS and slower else compiled

    def _features(self, X: Any) -> pl.DataFrame:
        """``X`` as the feature columns, converted to the contract's types."""
        from loopml.pipeline._fit import as_frame
        from loopml.serve import conform

        check_is_fitted(self, "model_")
        columns = list(self.feature_columns_)
        frame = as_frame(X, names=columns)
        if not _named(X) and frame.width != len(columns):
            raise SchemaError(
                f"X has {frame.width} columns; the model was fitted on {len(columns)}.",
                hint="Pass the same columns, in the same order, as at fit time.",
            )
        return conform(frame, self.contract_).select(columns)

    # ---- what the user sees ------------------------------------------------------------------

    @property
    def leaderboard(self) -> Leaderboard:
        """Every candidate the search tried and why the winner won (``.to_frame()`` for a
        table)."""
        check_is_fitted(self, "leaderboard_")
        return self.leaderboard_

    @property
    def evaluation(self) -> Any:
        """Metrics on the held-out test split, scored once (``.metrics``, ``.score``)."""
        check_is_fitted(self, "evaluation_")
        return self.evaluation_

    def summary(self) -> list[tuple[str, str]]:
        """The model in a few (label, text) rows: task, target, winner, scores, data, time."""
        from loopml.pipeline._notebook import summary_rows

        check_is_fitted(self, "model_")
        return summary_rows(self)

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        if not hasattr(self, "model_"):
            return super().__repr__(N_CHAR_MAX)
        from loopml.pipeline._notebook import text_view

        return text_view(self)

    def _repr_html_(self) -> str:
        if not hasattr(self, "model_"):
            return super()._repr_html_inner()
        from loopml.pipeline._notebook import html_view

        return html_view(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, str]:
        # scikit-learn's own bundle (a diagram of the parameters) would win over _repr_html_
        if not hasattr(self, "model_"):
            return super()._repr_mimebundle_(**kwargs)
        return {"text/plain": repr(self), "text/html": self._repr_html_()}

    # ---- saving ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the model to the folder ``path`` (created): a model bundle, as a registered
        version has, plus the leaderboard and the fit's settings. ``loopml.load`` reads it."""
        from loopml.core.bundle import save_bundle, to_native
        from loopml.core.records import ModelBundle, Reference

        check_is_fitted(self, "model_")
        bundle = ModelBundle(
            model=self.model_, contract=self.contract_, task=self.task_, target=self.target_,
            feature_columns=self.feature_columns_,
            classes=None if self._task != "classification" else tuple(self.classes_.tolist()),
            positive_label=self.positive_label_, reference=Reference(features=()),
            evaluation=self.evaluation_,
        )
        folder = save_bundle(bundle, path)
        (folder / LEADERBOARD_FILE).write_text(
            json.dumps(asdict(self.leaderboard_), indent=1, default=to_native)
        )
        fit = {
            "params": self.get_params(), "task_reason": self.task_reason_,
            "split_sizes": self.split_sizes_, "rows_dropped": self.rows_dropped_,
            "fit_seconds": self.fit_seconds_, "array_input": not hasattr(self, "feature_names_in_"),
        }
        (folder / FIT_FILE).write_text(json.dumps(fit, indent=1, default=to_native))
        write_compiled(self, folder)
        return folder


class LoopmlClassifier(ClassifierMixin, LoopmlEstimator):
    """A classifier chosen by loopml's model search (see ``loopml.fit``).

    Fitted attributes: ``model_`` (the scikit-learn Pipeline: features, then the model),
    ``classes_``, ``positive_label_``, ``leaderboard_``, ``evaluation_`` (the test split),
    ``contract_``, ``feature_names_in_``, ``n_features_in_``, ``split_sizes_``, and
    ``compiled_``: the compiled form that ``predict`` and ``predict_proba`` use (as serving
    does) when it gave the model's answers on the test rows, else None: for a few rows
    always, for many when it scored the test rows faster than the model; ``serving_form_``
    says which form and why, with both forms' time on the test rows.
    """

    _task = "classification"

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities, one column per class in ``classes_`` order."""
        features = self._features(X)
        model = self._scorer(features.height)
        return np.asarray(model.predict_proba(features), dtype=np.float64)


class LoopmlRegressor(RegressorMixin, LoopmlEstimator):
    """A regressor chosen by loopml's model search (see ``loopml.fit``); fitted attributes as
    ``LoopmlClassifier``'s, without the classes."""

    _task = "regression"


def load_estimator(path: str | Path) -> LoopmlEstimator:
    """The estimator saved in ``path`` by ``save`` (or a model bundle folder of a registered
    version, whose leaderboard is then unknown)."""
    from loopml.core.bundle import load_bundle

    folder = Path(path)
    if not folder.is_dir():
        raise IntegrityError(
            f"No saved model at {folder}: it is not a folder.",
            hint="Pass the folder given to model.save(...).",
        )
    bundle = load_bundle(folder)
    if bundle.task not in ("classification", "regression"):
        raise IntegrityError(
            f"The model in {folder} is a {bundle.task} model; loopml.load reads "
            "classifiers and regressors.",
            hint="Score it with 'loopml predict' instead.",
        )
    fit: dict[str, Any] = {}
    if (folder / FIT_FILE).exists():
        fit = json.loads((folder / FIT_FILE).read_text())
    cls = LoopmlClassifier if bundle.task == "classification" else LoopmlRegressor
    model = cls(**fit.get("params", {}))
    model.model_ = bundle.model
    model.contract_ = bundle.contract
    model.evaluation_ = bundle.evaluation
    model.target_ = bundle.target
    model.task_ = bundle.task
    model.task_reason_ = fit.get("task_reason", bundle.task)
    model.positive_label_ = bundle.positive_label
    model.split_sizes_ = fit.get("split_sizes", {})
    model.rows_dropped_ = fit.get("rows_dropped", 0)
    model.fit_seconds_ = fit.get("fit_seconds")
    model._set_columns(list(bundle.feature_columns), array_input=fit.get("array_input", False))
    if bundle.task == "classification":
        model.classes_ = np.asarray(bundle.model.classes_)
    if (folder / LEADERBOARD_FILE).exists():
        model.leaderboard_ = leaderboard_from_dict(
            json.loads((folder / LEADERBOARD_FILE).read_text())
        )
    model.compiled_, model.serving_form_ = read_compiled(folder)
    return model


def write_compiled(model: LoopmlEstimator, folder: Path) -> None:
    """The compiled form (when the fit found it equal to the model) and the record of which
    form predicts, beside the bundle, as a registered version has them."""
    from loopml.core.bundle import COMPILED_DIR, SERVING_FILE

    record = getattr(model, "serving_form_", None)
    if record is None:
        return
    (folder / SERVING_FILE).write_text(json.dumps(record, indent=1))
    compiled = getattr(model, "compiled_", None)
    if compiled is not None:
        compiled.save(folder / COMPILED_DIR)


def read_compiled(folder: Path) -> tuple[Any, dict[str, Any] | None]:
    """The compiled form saved in ``folder`` (None when there is none, or it cannot be read:
    the model predicts) and the record of which form predicts and why."""
    from loopml.core.bundle import serving_record
    from loopml.pipeline._context import compiled_form

    compiled, reason = compiled_form(folder)
    record = serving_record(folder)
    if record is not None and compiled is None and record.get("form") == "compiled":
        record = {**record, "form": "pickle", "reason": reason}
    return compiled, record


def leaderboard_from_dict(raw: dict[str, Any]) -> Leaderboard:
    """A ``Leaderboard`` from its JSON form (tuples back from lists; fields a newer version
    wrote and this one lacks are left out)."""
    from dataclasses import fields

    from loopml.core.records import Candidate, Leaderboard

    def build(cls: Any, data: dict[str, Any]) -> Any:
        known = {f.name for f in fields(cls)}
        return cls(**{k: _tuples(v) if k != "params" else v
                      for k, v in data.items() if k in known})

    out = {k: v for k, v in raw.items() if k not in ("candidates", "best")}
    return build(Leaderboard, {
        **out, "candidates": tuple(build(Candidate, c) for c in raw["candidates"]),
        "best": build(Candidate, raw["best"]),
    })


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _named(X: Any) -> bool:
    """Whether ``X`` carries column names (a frame), not a bare array."""
    return hasattr(X, "columns") or hasattr(X, "column_names")
