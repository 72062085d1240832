"""Page–Hinkley and ADWIN on error streams with known change points, and quiet on stationary
streams (fixed seeds)."""

from __future__ import annotations

import numpy as np
import pytest

from loopml.core.errors import MonitorError
from loopml.monitor import ADWIN, PageHinkley, concept_drift

CHANGE = 3000


def bernoulli(rates: list[tuple[float, int]], seed: int) -> list[float]:
    """0/1 errors: ``n`` rows at each error rate, in order."""
    rng = np.random.default_rng(seed)
    return [float(x) for rate, n in rates for x in rng.random(n) < rate]


def first(detector, stream: list[float]) -> int | None:
    return next((i for i, x in enumerate(stream) if detector.update(x).drift_detected), None)


@pytest.mark.parametrize("seed", range(8))
def test_page_hinkley_finds_a_rising_error_rate_soon_after_the_change(seed):
    """An error rate rising from 10% to 35% is found within 400 rows of the change."""
    stream = bernoulli([(0.10, CHANGE), (0.35, CHANGE)], seed)
    found = first(PageHinkley(), stream)
    assert found is not None and CHANGE <= found < CHANGE + 400


@pytest.mark.parametrize("seed", range(8))
def test_adwin_finds_a_change_either_way_soon_after_it(seed):
    """Error rate up (10% -> 30%) or down (30% -> 10%): found within 500 rows."""
    for rates in ([(0.1, CHANGE), (0.3, CHANGE)], [(0.3, CHANGE), (0.1, CHANGE)]):
        found = first(ADWIN(), bernoulli(rates, seed))
        assert found is not None and CHANGE <= found < CHANGE + 500


@pytest.mark.parametrize("seed", range(10))
def test_no_detector_fires_on_a_stationary_stream(seed):
    """10,000 rows at a constant 20% error rate raise no alarm from either detector."""
    stream = bernoulli([(0.2, 10_000)], seed)
    assert first(PageHinkley(), stream) is None
    assert first(ADWIN(), stream) is None
    assert concept_drift(stream) is None


def test_page_hinkley_ignores_a_falling_error_rate():
    """Fewer errors are not a problem: Page–Hinkley watches increases only."""
    assert first(PageHinkley(), bernoulli([(0.4, CHANGE), (0.1, CHANGE)], 0)) is None


def test_adwin_forgets_the_old_part_and_finds_the_next_change():
    """After a change the window holds only newer values; a second change is found too."""
    stream = bernoulli([(0.1, 2000), (0.5, 2000), (0.1, 2000)], 3)
    adwin = ADWIN()
    found = [i for i, x in enumerate(stream) if adwin.update(x).drift_detected]
    assert any(2000 <= i < 2500 for i in found) and any(4000 <= i < 4500 for i in found)
    assert adwin.width < 2500 and adwin.mean == pytest.approx(0.1, abs=0.05)


def test_adwin_keeps_the_exact_mean_and_length_of_a_stable_stream():
    """Without a change the window is the whole stream and its mean is exact."""
    rng = np.random.default_rng(0)
    values = rng.normal(5.0, 1.0, 3000)
    adwin = ADWIN()
    for v in values:
        adwin.update(v)
    assert adwin.width == 3000 and adwin.mean == pytest.approx(values.mean())


def test_adwin_needs_no_threshold_in_the_streams_units():
    """Absolute errors of a regressor (scale 10) rising by half: found, and quiet before."""
    rng = np.random.default_rng(1)
    stream = np.abs(np.r_[rng.normal(0, 10, CHANGE), rng.normal(0, 15, CHANGE)]).tolist()
    found = concept_drift(stream)
    assert found is not None and CHANGE <= found < CHANGE + 500


def test_concept_drift_returns_the_first_index_and_takes_another_detector():
    """The index of the first detection, with ADWIN by default or a detector passed in."""
    stream = bernoulli([(0.05, 1000), (0.6, 1000)], 2)
    by_adwin, by_ph = concept_drift(stream), concept_drift(stream, detector=PageHinkley())
    assert 1000 <= by_adwin < 1200 and 1000 <= by_ph < 1200
    assert concept_drift([]) is None
    assert concept_drift([float("nan")] * 50 + stream) == by_adwin + 50


def test_page_hinkley_starts_afresh_after_a_detection():
    """After a detection its statistics reset, so the next update begins a new test."""
    ph = PageHinkley(threshold=5, min_instances=5)
    for x in [0.0] * 20 + [1.0] * 50:
        if ph.update(x).drift_detected:
            break
    assert ph.drift_detected
    ph.update(0.0)
    assert not ph.drift_detected and ph.n == 1


def test_bad_detector_settings_are_monitor_errors():
    """Impossible parameters are refused with a MonitorError naming them."""
    with pytest.raises(MonitorError, match="threshold"):
        PageHinkley(threshold=0)
    with pytest.raises(MonitorError, match="delta"):
        ADWIN(delta=1.5)
