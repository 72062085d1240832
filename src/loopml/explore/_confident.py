"""Confident learning (Northcutt, Jiang and Chuang, 2021, as cleanlab's ``find_label_issues``
does it, in a few lines of numpy): which given labels out-of-fold probabilities contradict.

1. Each class j gets a threshold t_j: the mean probability of class j over the rows labelled j
   (its mean self-confidence), so a class the model finds hard is not held to a high bar.
2. A row is *confidently* of class j when p_j >= t_j (the likeliest such class when several).
   The confident joint C[i, j] counts rows labelled i confidently of class j.
3. The rows off its diagonal (labelled i, confidently j != i) whose likeliest class is not their
   label are the suspected mislabels. The calibrated joint (each row of C scaled to the number
   of rows labelled i) estimates how many labels are wrong in all.
4. Suspects are ranked by self-confidence p_given (lowest first) or by the margin
   p_given - max_{j != given} p_j (most negative first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RANKINGS = ("self_confidence", "margin")


@dataclass(frozen=True, slots=True)
class LabelIssues:
    rows: np.ndarray  # positions of the suspected mislabels, most suspicious first
    suggested: np.ndarray  # each suspect's confident class
    thresholds: np.ndarray  # per class: mean self-confidence
    joint: np.ndarray  # the confident joint, (given, confident) counts
    estimated_noise: float  # share of labels the calibrated joint estimates wrong


def find_label_issues(
    labels: np.ndarray, probs: np.ndarray, *, rank_by: str = "self_confidence"
) -> LabelIssues:
    """Suspected mislabels among ``labels`` (class codes 0..k-1) given out-of-fold ``probs``
    (rows x k), by confident learning (module docstring).

    >>> labels = np.array([0, 0, 0, 1, 1, 1])
    >>> probs = np.array([[.9, .1], [.8, .2], [.1, .9], [.2, .8], [.1, .9], [.3, .7]])
    >>> issues = find_label_issues(labels, probs)
    >>> issues.rows.tolist(), issues.suggested.tolist(), issues.thresholds.round(2).tolist()
    ([2], [1], [0.6, 0.8])
    """
    if rank_by not in RANKINGS:
        raise ValueError(f"rank_by must be one of {RANKINGS}, not {rank_by!r}")
    n, k = probs.shape
    counts = np.bincount(labels, minlength=k)
    sums = np.zeros(k)
    np.add.at(sums, labels, probs[np.arange(n), labels])
    thresholds = np.divide(sums, counts, out=np.ones(k), where=counts > 0)
    above = probs >= thresholds - 1e-6
    confident = np.where(above, probs, -np.inf).argmax(axis=1)
    counted = above.any(axis=1)
    joint = np.zeros((k, k), dtype=np.int64)
    np.add.at(joint, (labels[counted], confident[counted]), 1)

    flagged = counted & (confident != labels) & (probs.argmax(axis=1) != labels)
    rows = np.flatnonzero(flagged)
    own = probs[rows, labels[rows]]
    if rank_by == "self_confidence":
        order = np.argsort(own, kind="stable")
    else:
        others = probs[rows].copy()
        others[np.arange(len(rows)), labels[rows]] = -np.inf
        order = np.argsort(own - others.max(axis=1), kind="stable")
    rows = rows[order]

    row_sums = joint.sum(axis=1)
    scale = np.divide(counts, row_sums, out=np.zeros(k), where=row_sums > 0)
    calibrated = joint * scale[:, None]
    noise = float((calibrated.sum() - np.trace(calibrated)) / n) if n else 0.0
    return LabelIssues(rows=rows, suggested=confident[rows], thresholds=thresholds,
                       joint=joint, estimated_noise=noise)
