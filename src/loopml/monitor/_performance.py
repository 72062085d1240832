"""Realised and estimated performance of one window of the prediction log.

Realised metrics use the rows whose ``_label`` arrived (the pipeline joins the feedback table
onto the log by ``_request_id`` and ``_record``, so a label that arrives late still counts in
the window of its prediction) and the metric code of ``loopml.evaluate``. A classifier's
probabilities come from the log when it holds them all (a binary model's ``_score`` is the
positive-class probability); otherwise the window's features are scored again by the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from loopml.core.errors import MonitorError
from loopml.core.labels import match_label, positive_index, positive_label
from loopml.core.records import ModelBundle
from loopml.evaluate import task_metrics
from loopml.monitor._cbpe import estimate_binary, estimate_top

LABEL = "_label"
PREDICTION = "_prediction"
SCORE = "_score"
TIME = "_predicted_at"


@dataclass(frozen=True, slots=True, kw_only=True)
class Performance:
    """What the labelled and unlabelled rows of a window say about the model."""

    labelled_rows: int = 0
    realised: dict[str, float] = field(default_factory=dict)
    estimated: dict[str, float] = field(default_factory=dict)  # every row of the window
    estimated_labelled: dict[str, float] = field(default_factory=dict)  # the labelled rows
    errors: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per labelled row
    error_times: pl.Series | None = None  # ``_predicted_at`` of each error, in order


def performance(bundle: ModelBundle, window: pl.DataFrame) -> Performance:
    """Realised metrics on the labelled rows, the label-free estimate (classifiers), and the
    per-row errors of the labelled rows in prediction order (0/1 for a classifier, absolute
    error for a regressor).

    >>> import polars as pl
    >>> from loopml.core.contract import Contract
    >>> from loopml.core.records import ModelBundle, Reference
    >>> bundle = ModelBundle(model=None, contract=Contract(source="s", columns=()),
    ...     task="classification", target="y", feature_columns=(), classes=("no", "yes"),
    ...     positive_label="yes", reference=Reference(features=()))
    >>> window = pl.DataFrame({"_score": [0.9, 0.2, 0.7, 0.1],
    ...                        "_label": ["yes", "no", "no", None]})
    >>> perf = performance(bundle, window)
    >>> perf.labelled_rows, round(perf.realised["accuracy"], 3)
    (3, 0.667)
    >>> round(perf.estimated["accuracy"], 3)  # all four rows, from the scores alone
    0.825
    """
    if bundle.task == "classification":
        return _classification(bundle, window)
    if bundle.task == "regression":
        return _regression(window)
    return Performance()


def _classification(bundle: ModelBundle, window: pl.DataFrame) -> Performance:
    classes, proba = _probabilities(bundle, window)
    calibration = bundle.reference.calibration
    binary = len(classes) == 2
    pos = _positive(bundle, classes) if binary else None
    if pos is not None:
        scores = proba[:, pos]
        cal = calibration if calibration is None or calibration.target == "positive" else None
        estimate = lambda rows: estimate_binary(scores[rows], cal)  # noqa: E731
    else:
        top = proba.max(axis=1)
        cal = calibration if calibration is not None and calibration.target == "correct" else None
        estimate = lambda rows: estimate_top(top[rows], cal)  # noqa: E731
    everything = np.ones(window.height, dtype=bool)
    estimated = _finite(estimate(everything)) if window.height else {}
    if LABEL not in window.columns:
        return Performance(estimated=estimated)
    matched = [match_label(v, classes) for v in window[LABEL].to_list()]
    labelled = np.array([m is not None for m in matched], dtype=bool)
    if not labelled.any():
        return Performance(estimated=estimated)
    y = np.array([m for m in matched if m is not None], dtype=object)
    p = proba[labelled]
    realised = task_metrics("classification", _same_kind(y, classes), p, classes=list(classes),
                            positive_label=bundle.positive_label)  # fmt: skip
    predicted = np.asarray(classes, dtype=object)[np.argmax(p, axis=1)]
    errors = np.array([a != b for a, b in zip(predicted, y, strict=True)], dtype=float)
    return _ordered(
        window, labelled, errors,
        labelled_rows=int(labelled.sum()), realised=_finite(realised),
        estimated=estimated, estimated_labelled=_finite(estimate(labelled)),
    )  # fmt: skip


def _regression(window: pl.DataFrame) -> Performance:
    if LABEL not in window.columns or PREDICTION not in window.columns:
        return Performance()
    try:
        y = window[LABEL].cast(pl.Float64, strict=False)
        pred = window[PREDICTION].cast(pl.Float64, strict=False)
    except pl.exceptions.InvalidOperationError as exc:
        raise MonitorError(
            f"A regression window needs numeric _label and _prediction; found "
            f"{window[LABEL].dtype} and {window[PREDICTION].dtype}.",
            hint="Send numeric labels back for a regression model.",
        ) from exc
    labelled = (y.is_not_null() & y.is_finite() & pred.is_not_null()).to_numpy()
    if not labelled.any():
        return Performance()
    yv, pv = y.to_numpy()[labelled], pred.to_numpy()[labelled]
    realised = task_metrics("regression", yv, pv)
    return _ordered(window, labelled, np.abs(yv - pv), labelled_rows=int(labelled.sum()),
                    realised=_finite(realised))  # fmt: skip


def _ordered(
    window: pl.DataFrame, labelled: np.ndarray, errors: np.ndarray, **kw: Any
) -> Performance:
    """The errors in the order of their predictions (when the window says when)."""
    times = None
    if TIME in window.columns and window[TIME].dtype.is_temporal():
        times = window[TIME].filter(pl.Series(labelled))
        order = np.argsort(times.to_numpy(), kind="stable")
        errors, times = errors[order], times.gather(order)
    return Performance(errors=errors, error_times=times, **kw)


def _positive(bundle: ModelBundle, classes: tuple[Any, ...]) -> int | None:
    """The positive class's column, as serving scores it: the bundle's positive label, or for
    an older bundle without one the project's one rule (``core.labels.positive_label``)."""
    chosen = bundle.positive_label
    if chosen is None:
        chosen = positive_label(list(classes))
    return positive_index(classes, chosen)


def _probabilities(bundle: ModelBundle, window: pl.DataFrame) -> tuple[tuple[Any, ...], np.ndarray]:
    """The classes and a rows x classes probability matrix for the window."""
    classes = tuple(bundle.classes or ())
    if len(classes) == 2 and SCORE in window.columns and window[SCORE].dtype.is_numeric():
        scores = window[SCORE].cast(pl.Float64)
        pos = _positive(bundle, classes)
        if scores.null_count() == 0 and pos is not None:
            s = np.clip(scores.to_numpy(), 0.0, 1.0)
            proba = np.empty((len(s), 2))
            proba[:, pos], proba[:, 1 - pos] = s, 1 - s
            return classes, proba
    if bundle.model is None or not hasattr(bundle.model, "predict_proba"):
        raise MonitorError(
            "The window has no usable _score column and the model gives no probabilities.",
            hint="Pass a window of the prediction log, which stores _score for every row.",
        )
    missing = [c for c in bundle.feature_columns if c not in window.columns]
    if missing:
        raise MonitorError(
            f"The window lacks the feature column(s) {', '.join(map(repr, missing[:10]))} "
            "needed to score it again.",
            hint="Check that the prediction log stores every feature the model was trained on.",
        )
    try:
        proba = np.asarray(bundle.model.predict_proba(window.select(bundle.feature_columns)))
    except Exception as exc:  # a model's own failure, reported with the window it met
        raise MonitorError(
            f"The model could not score the window again: {type(exc).__name__}: {exc}",
            hint="Log the features with the types of the model's contract.",
        ) from exc
    own = getattr(bundle.model, "classes_", None)
    return (tuple(own) if own is not None else classes), proba


def _same_kind(y: np.ndarray, classes: tuple[Any, ...]) -> np.ndarray:
    """Labels as an array of the classes' own dtype, so sklearn compares like with like."""
    kind = np.asarray(classes)
    return y.astype(kind.dtype) if kind.dtype != object else y


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
