"""Promotion only on evidence: a win by the margin with an interval that excludes zero."""

from __future__ import annotations

import numpy as np

from loopml.core.records import Comparison, Evidence
from loopml.loop import compare, decide


def evidence(diff: float, low: float, high: float, name: str = "window") -> Evidence:
    c = Comparison(metric="roc_auc", greater_is_better=True, rows=1000, champion=0.70,
                   challenger=0.70 + diff, difference=diff, low=low, high=high,
                   confidence=0.95, bootstrap=1000, seed=0)
    return Evidence(name=name, comparison=c)


def test_first_model_is_champion() -> None:
    """With no champion, the new model is promoted."""
    d = decide([], champion_version=None, candidate_version=1, candidate_score=0.6)
    assert d.promote and d.alias == "champion" and d.candidate_score == 0.6


def test_clear_win_on_every_evidence_set_promotes() -> None:
    """A win above the margin with intervals above zero on window and test split promotes."""
    d = decide([evidence(0.03, 0.01, 0.05), evidence(0.02, 0.005, 0.04, "test split")],
               champion_version=1, candidate_version=2, min_gain=0.005)
    assert d.promote and d.alias == "champion" and len(d.evidence) == 2
    assert "beats champion v1" in d.reason and d.champion_version == 1


def test_interval_containing_zero_keeps_the_champion() -> None:
    """A win whose interval contains zero is not promoted, and the reason says why."""
    d = decide([evidence(0.02, -0.01, 0.05)], champion_version=1, candidate_version=2)
    assert not d.promote and d.alias == "challenger"
    assert "contains zero" in d.reason


def test_win_below_the_margin_keeps_the_champion() -> None:
    """A certain but smaller win than loop.min_gain is not enough."""
    d = decide([evidence(0.004, 0.001, 0.008)], champion_version=1, min_gain=0.01)
    assert not d.promote and "more than 0.01" in d.reason


def test_every_evidence_set_must_agree() -> None:
    """Winning on the test split but not on the window keeps the champion."""
    d = decide([evidence(-0.01, -0.03, 0.01), evidence(0.03, 0.01, 0.05, "test split")],
               champion_version=4)
    assert not d.promote and "on the window" in d.reason


def test_noisy_small_win_does_not_promote() -> None:
    """Same rows, a challenger a hair better by chance: the paired interval contains zero."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 200)
    base = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.4, 200), 0.01, 0.99)
    tweak = np.clip(base + rng.normal(0, 0.05, 200), 0.01, 0.99)
    champion, challenger = np.column_stack([1 - base, base]), np.column_stack([1 - tweak, tweak])
    c = compare(y, champion, challenger, task="classification", metric="roc_auc",
                classes=(0, 1), bootstrap=1000, seed=0)
    d = decide([Evidence(name="window", comparison=c)], champion_version=1, candidate_version=2)
    assert c.low < 0 < c.high
    assert not d.promote and d.alias == "challenger"


def test_no_evidence_keeps_the_champion() -> None:
    """Without rows to compare on, nothing is promoted."""
    d = decide([], champion_version=2)
    assert not d.promote and "no rows" in d.reason
