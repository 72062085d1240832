"""Label-free performance of a classifier: confidence-based performance estimation (CBPE).

When a classifier's scores are calibrated probabilities, each row's score says how likely its
prediction is right, so the confusion matrix of a window can be expected before any label
arrives (NannyML's CBPE). For a binary model with calibrated positive-class probability q_j and
prediction yhat_j:

    TP = sum_{yhat=1} q_j,   FP = sum_{yhat=1} (1 - q_j),
    FN = sum_{yhat=0} q_j,   TN = sum_{yhat=0} (1 - q_j)

give accuracy, precision, recall and F1. ROC AUC is the area under the expected curve: rows
ordered by score, each counted as a positive with weight q_j and as a negative with weight
1 - q_j. Expected log loss is the mean of -(q ln p + (1 - q) ln(1 - p)) over the model's own
probability p. A multiclass model gets its expected accuracy: the mean calibrated probability
that the top class is right.

Raw scores are rarely calibrated, so ``build_calibration`` learns an isotonic map from scores
to probabilities on held-out rows at training time; the map travels with the model's reference
as knots (``Calibration``). Without one the raw scores are taken as probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from loopml.core.errors import MonitorError
from loopml.core.labels import match_label
from loopml.core.records import Calibration

MAX_KNOTS = 512
LOG_EPS = 1e-15


def build_calibration(
    scores: Sequence[float],
    labels: Sequence[Any],
    positive: Any,
    *,
    predictions: Sequence[Any] | None = None,
) -> Calibration:
    """Learn the isotonic map from scores to probabilities on held-out rows.

    Binary model: ``scores`` are positive-class probabilities, ``labels`` the true labels and
    ``positive`` the positive class. Multiclass model (``positive=None``): ``scores`` are the
    top-class probabilities and ``predictions`` the predicted classes, so the map gives the
    probability that a prediction is right.

    >>> cal = build_calibration([0.1, 0.3, 0.6, 0.9], ["no", "no", "yes", "yes"], "yes")
    >>> cal.target, cal.scores, cal.probabilities
    ('positive', (0.1, 0.3, 0.6, 0.9), (0.0, 0.0, 1.0, 1.0))
    """
    from sklearn.isotonic import IsotonicRegression

    s = np.asarray(scores, dtype=float)
    if positive is None:
        if predictions is None:
            raise MonitorError(
                "A calibration without a positive class needs the predicted classes.",
                hint="Pass predictions= (multiclass) or the positive class (binary).",
            )
        target = "correct"
        hits = np.array([_same(p, y) for p, y in zip(predictions, labels, strict=True)])
    else:
        target = "positive"
        hits = np.array([_same(positive, y) for y in labels])
    if len(s) != len(hits):
        raise MonitorError(f"Calibration got {len(s)} scores but {len(hits)} labels.")
    keep = np.isfinite(s)
    if keep.sum() < 2:
        raise MonitorError(
            f"Calibration needs at least 2 scored held-out rows; got {int(keep.sum())}.",
            hint="Hold out more rows for testing (train.test_size in loopml.yaml).",
        )
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(s[keep], hits[keep].astype(float))
    xs, ys = np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_)
    if len(xs) > MAX_KNOTS:  # keep the file small; the map is smooth enough between knots
        idx = np.unique(np.linspace(0, len(xs) - 1, MAX_KNOTS).round().astype(int))
        xs, ys = xs[idx], ys[idx]
    return Calibration(
        target=target,
        scores=tuple(round(float(v), 9) for v in xs),
        probabilities=tuple(round(float(v), 9) for v in ys),
        rows=int(keep.sum()),
    )


def calibrate(calibration: Calibration | None, scores: np.ndarray) -> np.ndarray:
    """Scores through the calibration map (linear between knots, clipped outside); without a
    calibration the scores themselves, clipped to [0, 1].

    >>> from loopml.core.records import Calibration
    >>> cal = Calibration(target="positive", scores=(0.2, 0.8), probabilities=(0.1, 0.5))
    >>> calibrate(cal, np.array([0.0, 0.5, 1.0])).tolist()
    [0.1, 0.3, 0.5]
    """
    scores = np.asarray(scores, dtype=float)
    if calibration is None or not calibration.scores:
        return np.clip(scores, 0.0, 1.0)
    return np.interp(scores, calibration.scores, calibration.probabilities)


def estimate_binary(
    scores: np.ndarray, calibration: Calibration | None = None
) -> dict[str, float]:
    """Expected accuracy, precision, recall, F1, ROC AUC and log loss of a binary model from
    its positive-class scores alone (the prediction is positive where the score is above 0.5).

    >>> est = estimate_binary(np.array([0.9, 0.8, 0.2, 0.1]))
    >>> round(est["accuracy"], 3), round(est["precision"], 3), round(est["roc_auc"], 3)
    (0.85, 0.85, 0.875)
    """
    p = np.asarray(scores, dtype=float)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return {}
    q = calibrate(calibration, p)
    positive = p > 0.5  # argmax of (1 - p, p): a tie goes to the first column, as in evaluate
    tp, fp = q[positive].sum(), (1 - q[positive]).sum()
    fn, tn = q[~positive].sum(), (1 - q[~positive]).sum()
    out = {
        "accuracy": float((tp + tn) / p.size),
        "precision": float(tp / (tp + fp)) if tp + fp > 0 else 0.0,
        "recall": float(tp / (tp + fn)) if tp + fn > 0 else 0.0,
        "f1": float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn > 0 else 0.0,
        "roc_auc": expected_roc_auc(p, q),
    }
    pc = np.clip(p, LOG_EPS, 1 - LOG_EPS)
    out["log_loss"] = float(-np.mean(q * np.log(pc) + (1 - q) * np.log(1 - pc)))
    return out


def estimate_top(
    scores: np.ndarray, calibration: Calibration | None = None
) -> dict[str, float]:
    """Expected accuracy of a multiclass model from its top-class probabilities.

    >>> estimate_top(np.array([0.9, 0.5]))
    {'accuracy': 0.7}
    """
    p = np.asarray(scores, dtype=float)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return {}
    return {"accuracy": float(np.mean(calibrate(calibration, p)))}


def expected_roc_auc(scores: np.ndarray, q: np.ndarray) -> float:
    """Area under the ROC curve expected when row j is positive with probability q_j, the rows
    ranked by ``scores`` (tied scores move together, as one step of the curve).

    >>> round(expected_roc_auc(np.array([0.1, 0.9]), np.array([0.0, 1.0])), 6)
    1.0
    """
    order = np.argsort(-scores, kind="stable")
    s, pos, neg = scores[order], q[order], 1 - q[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end of each tie group
    tp, fp = np.cumsum(pos)[last], np.cumsum(neg)[last]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return float("nan")
    tpr, fpr = np.r_[0.0, tp / tp[-1]], np.r_[0.0, fp / fp[-1]]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def _same(a: Any, b: Any) -> bool:
    """Whether two labels name the same class (the one matching rule of core.labels)."""
    return b is not None and match_label(b, [a]) is not None
