"""The profile's isolation forest: rows few random splits isolate score high, ordinary rows
near or under 0.5, as in the published algorithm (and scikit-learn's implementation of it)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from loopml.explore._iforest import average_path, isolation_scores


def _cloud_with_outliers(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(0, 1, (2_990, 6)), rng.normal(6, 0.5, (10, 6))])


def test_planted_outliers_score_highest_and_ordinary_rows_near_a_half() -> None:
    scores = isolation_scores(_cloud_with_outliers())
    assert set(np.argsort(-scores)[:10]) == set(range(2_990, 3_000))
    assert scores[2_990:].min() > 0.65
    assert 0.35 < float(np.median(scores[:2_990])) < 0.5
    assert ((scores > 0) & (scores < 1)).all()


def test_it_ranks_rows_as_scikit_learns_isolation_forest_does() -> None:
    from sklearn.ensemble import IsolationForest

    x = _cloud_with_outliers(2)
    ours = isolation_scores(x, seed=3)
    theirs = -IsolationForest(n_estimators=100, max_samples=256, random_state=3).fit(
        x).score_samples(x)
    assert spearmanr(ours, theirs).statistic > 0.85  # two random forests, one algorithm
    # the share called anomalous (score over 0.5) agrees within a few points
    assert abs((ours > 0.5).mean() - (theirs > 0.5).mean()) < 0.05


def test_constant_rows_cannot_be_isolated_and_the_seed_fixes_the_forest() -> None:
    assert np.allclose(isolation_scores(np.ones((50, 3))), 0.5)
    x = _cloud_with_outliers()
    assert np.array_equal(isolation_scores(x, seed=7), isolation_scores(x, seed=7))
    assert not np.array_equal(isolation_scores(x, seed=7), isolation_scores(x, seed=8))


@pytest.mark.parametrize(("n", "expected"), [(1, 0.0), (2, 1.0), (256, 10.2448)])
def test_average_path_length(n: int, expected: float) -> None:
    assert float(average_path(n)) == pytest.approx(expected, abs=1e-4)
