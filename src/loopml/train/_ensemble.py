"""Greedy ensemble selection (Caruana et al., 2004) over out-of-fold predictions.

Start from the best few candidates, then repeatedly add (with replacement) the candidate
whose addition most improves the out-of-fold score of the averaged predictions. The weights
are how often each candidate was picked. Because the first step is the best single
candidate and the best prefix is kept, the ensemble's out-of-fold score is never worse.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from loopml.train._cv import Problem

ENSEMBLE_SIZE = 30  # greedy steps
INIT_MAX = 3  # the ensemble starts from up to this many of the best candidates


def greedy_ensemble(
    oofs: list[np.ndarray], y: np.ndarray, problem: Problem, *, size: int = ENSEMBLE_SIZE,
) -> tuple[dict[int, float], float]:
    """Weights by candidate position (summing to 1) and the ensemble's out-of-fold score.

    ``oofs`` are the candidates' out-of-fold predictions on the same rows, best first.

    >>> from loopml.train._cv import Problem
    >>> p = Problem(task="regression", metric="rmse", greater_is_better=False, classes=None,
    ...             positive=None, seed=0, threads=1, deterministic=True)
    >>> y = np.array([0.0, 1.0, 2.0, 3.0])
    >>> w, s = greedy_ensemble([y + 0.5, y - 0.5], y, p)
    >>> w, s
    ({0: 0.5, 1: 0.5}, 0.0)
    """
    def better(a: float, b: float) -> bool:
        return problem.better(a, b)

    # the initial members: the best k (k <= INIT_MAX) whose plain average scores best
    picks: list[int] = [0]
    best = problem.score(y, oofs[0])
    total = oofs[0].copy()
    for k in range(2, min(INIT_MAX, len(oofs)) + 1):
        avg = sum(oofs[:k]) / k
        s = problem.score(y, avg)
        if better(s, best):
            best, picks, total = s, list(range(k)), sum(oofs[:k])
    best_picks = list(picks)
    for _ in range(size - len(picks)):
        n = len(picks) + 1
        step_best, step_pick = None, None
        for j, oof in enumerate(oofs):
            s = problem.score(y, (total + oof) / n)
            if step_best is None or better(s, step_best):
                step_best, step_pick = s, j
        if step_pick is None:
            break
        picks.append(step_pick)
        total = total + oofs[step_pick]
        if better(step_best, best):  # type: ignore[arg-type]
            best, best_picks = step_best, list(picks)  # type: ignore[assignment]
    counts = Counter(best_picks)
    weights = {j: c / len(best_picks) for j, c in sorted(counts.items())}
    return weights, float(best)
