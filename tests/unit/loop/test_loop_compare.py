"""Champion and challenger on the same rows: scores and the paired bootstrap interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as m

from loopml.core.errors import LoopError
from loopml.loop import compare


def probabilities(y: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    p = np.clip(0.5 + (y - 0.5) * 0.6 + rng.normal(0, noise, len(y)), 0.01, 0.99)
    return np.column_stack([1 - p, p])


def test_scores_equal_the_metric_on_the_same_rows() -> None:
    """Both scores are the metric on the given rows (ROC AUC as scikit-learn computes it)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    a, b = probabilities(y, 0.5, rng), probabilities(y, 0.3, rng)
    c = compare(np.where(y == 1, "yes", "no"), a, b,
                task="classification", metric="roc_auc", classes=("no", "yes"),
                positive_label="yes", bootstrap=300, seed=3)
    assert c.champion == pytest.approx(m.roc_auc_score(y, a[:, 1]))
    assert c.challenger == pytest.approx(m.roc_auc_score(y, b[:, 1]))
    assert c.difference == pytest.approx(c.challenger - c.champion)
    assert c.rows == 400 and c.bootstrap == 300 and c.confidence == 0.95
    assert c.low <= c.difference <= c.high


def test_clear_win_has_an_interval_above_zero() -> None:
    """A much better challenger on many rows: the interval excludes zero."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 3000)
    c = compare(y, probabilities(y, 0.6, rng), probabilities(y, 0.2, rng),
                task="classification", metric="roc_auc", classes=(0, 1), bootstrap=500, seed=0)
    assert c.difference > 0.05 and c.low > 0


def test_lower_is_better_metrics_are_signed_for_the_challenger() -> None:
    """For RMSE the difference is champion - challenger, positive when the challenger wins."""
    rng = np.random.default_rng(2)
    y = rng.normal(size=800)
    c = compare(y, y + rng.normal(0, 1.0, 800), y + rng.normal(0, 0.3, 800),
                task="regression", metric="rmse", bootstrap=200, seed=0)
    assert not c.greater_is_better and c.challenger < c.champion
    assert c.difference == pytest.approx(c.champion - c.challenger) and c.low > 0


def test_same_seed_same_interval() -> None:
    """The bootstrap is seeded: the same inputs and seed give the same interval."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 300)
    a, b = probabilities(y, 0.5, rng), probabilities(y, 0.45, rng)
    kw = dict(task="classification", metric="accuracy", classes=(0, 1), bootstrap=200)
    one, two = compare(y, a, b, seed=9, **kw), compare(y, a, b, seed=9, **kw)
    assert (one.low, one.high) == (two.low, two.high)


def test_undefined_metric_gives_nan_not_an_error() -> None:
    """One class only: ROC AUC is undefined, reported as NaN."""
    y = np.ones(50, dtype=int)
    p = np.column_stack([np.full(50, 0.3), np.full(50, 0.7)])
    c = compare(y, p, p, task="classification", metric="roc_auc", classes=(0, 1), bootstrap=50)
    assert math.isnan(c.champion) and math.isnan(c.low)


def test_clustering_cannot_be_compared() -> None:
    """Clustering has no ground truth: a LoopError says so."""
    with pytest.raises(LoopError) as info:
        compare([1], [1], [1], task="clustering", metric="silhouette")
    assert "promote" in (info.value.hint or "")


def test_the_bootstrap_of_many_rows_holds_bounded_memory(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """The champion gate resamples the whole test split (300,000 rows beyond the sampling
    limit): drawn a hundred resamples at a time, its weights alone took over a gigabyte, and
    the run's peak memory with them. Drawn a few at a time, the interval is the same (the
    same random stream, consumed in the same order) in a small fraction of the memory."""
    import tracemalloc

    import loopml.loop._compare as module

    rng = np.random.default_rng(0)
    n = 200_000
    y = rng.integers(0, 2, n)
    a, b = probabilities(y, 0.5, rng), probabilities(y, 0.45, rng)
    options = {"task": "classification", "metric": "roc_auc", "classes": (0, 1),
               "bootstrap": 30, "seed": 3}
    tracemalloc.start()
    try:
        c = compare(y, a, b, **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 120 * 2**20  # thirty resamples at once: over 300 MB
    assert c.low < c.difference < c.high
    monkeypatch.setattr(module, "_CELLS", 30 * n)  # every resample in one draw
    at_once = compare(y, a, b, **options)
    assert (at_once.low, at_once.high) == (c.low, c.high)
