"""Probability calibration, decision thresholds and class weights, each chosen on out-of-fold
predictions and used only when they help there."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from loopml.core.labels import positive_index
from loopml.core.labels import positive_label as positive_rule

CALIBRATION_FOLDS = 5
MIN_CALIBRATION_ROWS = 60  # fewer out-of-fold rows cannot tell a better calibration from luck
MIN_GAIN = 0.01  # relative log-loss improvement a calibration must bring ...
MIN_GAIN_ABS = 0.002  # ... and in absolute terms
THRESHOLD_METRICS = ("f1", "accuracy")
THRESHOLD_GRID = 101  # candidate thresholds: quantiles of the positive class's probability
THRESHOLD_SMOOTH = 5  # grid points averaged on each side, so one row cannot decide
THRESHOLD_MARGIN = 0.002  # 0.5 stays unless the smoothed best beats it by this much
IMBALANCE_SHARE = 0.2  # the smallest class below this share of rows ...
IMBALANCE_RATIO = 4.0  # ... or the largest this many times the smallest: weights
_EPS = 1e-6


class Calibrator:
    """A fitted calibration map from a model's class probabilities to calibrated ones.

    ``method`` is ``isotonic`` or ``sigmoid`` (Platt; binary, on the second column) or
    ``temperature`` (one temperature for every class). ``log_loss_before``/``after`` are the
    cross-validated out-of-fold log losses that chose it.
    """

    def __init__(self, method: str, *, log_loss_before: float = float("nan"),
                 log_loss_after: float = float("nan")):  # fmt: skip
        if method not in ("isotonic", "sigmoid", "temperature"):
            raise ValueError(f"unknown calibration method {method!r}")
        self.method = method
        self.log_loss_before = log_loss_before
        self.log_loss_after = log_loss_after
        self.params_: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Calibrator({self.method!r})"

    def describe(self) -> str:
        """One sentence for the leaderboard: the method and what it did to log loss."""
        return (f"{self.method}: cross-validated out-of-fold log loss "
                f"{self.log_loss_before:.4f} -> {self.log_loss_after:.4f}")  # fmt: skip

    def fit(self, proba: np.ndarray, truth: np.ndarray) -> Calibrator:
        """Fit on probabilities ``proba`` (rows x classes) and class positions ``truth``."""
        proba = np.asarray(proba, dtype=float)
        if self.method == "temperature":
            self.params_ = {"temperature": _fit_temperature(proba, truth)}
        elif self.method == "sigmoid":
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=1e4, max_iter=1000).fit(_logit(proba[:, 1])[:, None],
                                                              truth == 1)
            self.params_ = {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
        else:
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            self.params_ = {"isotonic": iso.fit(proba[:, 1], (truth == 1).astype(float))}
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probabilities: same shape, each row summing to 1."""
        isotonic = self.params_.get("isotonic")
        return calibrated(self.method, proba, self.params_,
                          None if isotonic is None else isotonic.predict)


def calibrated(method: str, proba: np.ndarray, params: dict[str, Any],
               isotonic: Any = None) -> np.ndarray:
    """``proba`` through a fitted calibration map: ``params`` holds the temperature or the
    sigmoid's ``a`` and ``b``; ``isotonic`` maps the positive class's probabilities."""
    proba = np.asarray(proba, dtype=float)
    if method == "temperature":
        z = np.log(np.clip(proba, _EPS, 1.0)) / params["temperature"]
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    if method == "sigmoid":
        z = params["a"] * _logit(proba[:, 1]) + params["b"]
        p = 1.0 / (1.0 + np.exp(-z))
    else:
        p = isotonic(proba[:, 1])
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.column_stack([1 - p, p])


def choose_calibration(
    oof_proba: np.ndarray, y: np.ndarray, classes: Sequence[Any], *, seed: int
) -> Calibrator | None:
    """The calibration that most lowers log loss on out-of-fold predictions, or None.

    Candidates: isotonic and sigmoid (Platt) for a binary model, temperature scaling for
    any. Each is fitted on some folds of the out-of-fold predictions and scored on the
    others (cross-validated), so a calibration cannot win by memorising; one is returned,
    fitted on all the rows, only when it lowers log loss by at least 1% (and 0.002).
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    from loopml.evaluate import metric_values

    classes = list(classes)
    proba, truth = _known_rows(np.asarray(oof_proba, dtype=float), y, classes)
    if len(truth) < MIN_CALIBRATION_ROWS or len(np.unique(truth)) < 2 or len(classes) < 2:
        return None
    counts = np.bincount(truth, minlength=len(classes))
    present = counts[counts > 0]
    splitter = (StratifiedKFold if present.min() >= CALIBRATION_FOLDS else KFold)(
        n_splits=CALIBRATION_FOLDS, shuffle=True, random_state=seed)
    folds = list(splitter.split(np.zeros(len(truth)), truth))
    index = np.asarray(classes, dtype=object)[truth]

    def loss(p: np.ndarray) -> float:
        return float(metric_values("log_loss", index, p, classes=classes)[0])

    before = loss(proba)
    methods = ["isotonic", "sigmoid", "temperature"] if len(classes) == 2 else ["temperature"]
    scored = {}
    for method in methods:
        out = np.empty_like(proba)
        for fit_idx, test_idx in folds:
            cal = Calibrator(method).fit(proba[fit_idx], truth[fit_idx])
            out[test_idx] = cal.transform(proba[test_idx])
        scored[method] = loss(out)
    method = min(scored, key=lambda m: scored[m])
    after = scored[method]
    if not before - after >= max(MIN_GAIN * before, MIN_GAIN_ABS):
        return None
    return Calibrator(method, log_loss_before=before, log_loss_after=after).fit(proba, truth)


def choose_threshold(
    oof_proba: np.ndarray, y: np.ndarray, classes: Sequence[Any], *, metric: str,
    positive_label: Any,
) -> float | None:
    """The probability of the positive class from which a binary model predicts it, chosen to
    maximise ``metric`` (f1 or accuracy) on out-of-fold predictions; None for other metrics
    and for more than two classes (the model then predicts the most probable class).

    The metric is computed at quantiles of the positive probability and smoothed over
    neighbouring thresholds, so the choice rests on many rows, not one; 0.5 is kept unless
    the smoothed best beats it by more than 0.002.
    """
    from loopml.evaluate import metric_values

    classes = list(classes)
    if metric not in THRESHOLD_METRICS or len(classes) != 2:
        return None
    pos = positive_index(classes, positive_rule(classes, positive_label))
    assert pos is not None
    proba, truth = _known_rows(np.asarray(oof_proba, dtype=float), y, classes)
    if len(truth) < 2 or len(np.unique(truth)) < 2:
        return None
    index = np.asarray(classes, dtype=object)[truth]
    p = proba[:, pos]
    grid = np.unique(np.r_[np.quantile(p, np.linspace(0.01, 0.99, THRESHOLD_GRID)), 0.5])

    def at(t: float) -> float:
        shifted = np.empty((len(p), 2))
        shifted[:, pos] = np.where(p >= t, 1.0, 0.0)
        shifted[:, 1 - pos] = 1.0 - shifted[:, pos]
        return float(metric_values(metric, index, shifted, classes=classes, positive=pos)[0])

    values = np.array([at(t) for t in grid])
    width = 2 * THRESHOLD_SMOOTH + 1
    padded = np.pad(values, THRESHOLD_SMOOTH, mode="edge")
    smooth = np.convolve(padded, np.ones(width) / width, mode="valid")
    best = int(np.argmax(smooth))
    half = int(np.flatnonzero(grid == 0.5)[0])
    if smooth[best] - smooth[half] <= THRESHOLD_MARGIN:
        return 0.5
    return round(float(grid[best]), 6)


def class_weights(y: np.ndarray) -> dict[Any, float] | None:
    """Balanced class weights (rows / (classes x class rows)) when the classes are imbalanced
    (the smallest under 20% of rows, or the largest over 4 times the smallest), else None.

    >>> class_weights(np.array(["a"] * 90 + ["b"] * 10))
    {'a': 0.5556, 'b': 5.0}
    >>> class_weights(np.array([0, 1] * 50)) is None
    True
    """
    values, counts = np.unique(np.asarray(y), return_counts=True)
    if len(values) < 2:
        return None
    share = counts.min() / counts.sum()
    if share >= IMBALANCE_SHARE and counts.max() / counts.min() <= IMBALANCE_RATIO:
        return None
    weights = counts.sum() / (len(values) * counts)
    return {v.item() if hasattr(v, "item") else v: round(float(w), 4)
            for v, w in zip(values, weights, strict=True)}  # fmt: skip


def _known_rows(proba: np.ndarray, y: Any, classes: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose label is one of ``classes``, with the label's position in ``classes``."""
    lookup = {c: i for i, c in enumerate(classes)}
    plain = y.tolist() if hasattr(y, "tolist") else list(y)
    truth = np.fromiter((lookup.get(v, -1) for v in plain), dtype=np.int64, count=len(plain))
    keep = truth >= 0
    return proba[keep], truth[keep]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _fit_temperature(proba: np.ndarray, truth: np.ndarray) -> float:
    """The temperature T minimising the log loss of softmax(log p / T)."""
    from scipy.optimize import minimize_scalar

    logp = np.log(np.clip(proba, _EPS, 1.0))
    rows = np.arange(len(truth))

    def nll(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[rows, truth]))

    found = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(found.x))
