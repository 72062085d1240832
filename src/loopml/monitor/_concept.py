"""Concept drift on the stream of realised errors: Page–Hinkley and ADWIN.

Both detectors follow River's interface (``river/base/drift_detector.py``): ``update(x)``
returns the detector, and ``drift_detected`` says whether that value completed a change. After
a detection the next ``update`` starts afresh (Page–Hinkley) or keeps the window after the
change (ADWIN), so a stream can be scanned for several changes.

Page–Hinkley (Page 1954) accumulates how far each value lies above the running mean, minus a
tolerance ``delta``, with a forgetting factor ``alpha``, floored at zero:

    m_t = max(0, alpha * m_{t-1} + x_t - mean_t - delta)

and signals when ``m_t >= threshold`` after ``min_instances`` values. It watches increases
only, which is what a rising error rate is. Its ``delta`` defaults to 0.02 rather than River's
0.005: on 0/1 error streams River's default raises false alarms within 10,000 stationary rows
for about one seed in seven, while 0.02 still finds a rise from 10% to 35% errors within about
350 rows. Its threshold is in the stream's units; ADWIN needs none.

ADWIN (Bifet and Gavaldà 2007) keeps a window of recent values compressed into buckets of
sizes 1, 2, 4, ... (at most ``max_buckets`` of each size) and, every ``clock`` values, tries
every split of the window into an older part W0 and a newer part W1. When the means differ by
more than

    eps = sqrt(2 / m * var * d) + 2 / (3 m) * d,   d = ln(2 ln(n) / delta),
    1 / m = 1 / (n0 - min_window + 1) + 1 / (n1 - min_window + 1)

(``var`` the variance of the whole window, ``n`` its length), the oldest bucket is dropped
and the test repeats; a drop is a detected change. ADWIN sees changes in either direction and
needs no threshold in the units of the stream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Self

from loopml.core.errors import MonitorError


class PageHinkley:
    """Page–Hinkley test for an increase in the mean of a stream.

    >>> import random
    >>> rng = random.Random(7)
    >>> stream = [float(rng.random() < 0.1) for _ in range(1000)]
    >>> stream += [float(rng.random() < 0.6) for _ in range(1000)]
    >>> ph = PageHinkley()
    >>> first = next(i for i, x in enumerate(stream) if ph.update(x).drift_detected)
    >>> 1000 <= first < 1200
    True
    """

    def __init__(
        self,
        *,
        min_instances: int = 30,
        delta: float = 0.02,
        threshold: float = 50.0,
        alpha: float = 1 - 1e-4,
    ) -> None:
        if min_instances < 1 or threshold <= 0 or not 0 < alpha <= 1:
            raise MonitorError(
                f"Page–Hinkley needs min_instances >= 1, threshold > 0 and 0 < alpha <= 1; got "
                f"{min_instances}, {threshold} and {alpha}."
            )
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self._drift = False
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.sum = 0.0

    @property
    def drift_detected(self) -> bool:
        """Whether the last value completed a change."""
        return self._drift

    def update(self, x: float) -> Self:
        """Add one value; after a detection the test starts afresh."""
        if self._drift:
            self._reset()
        x = float(x)
        self.n += 1
        self.mean += (x - self.mean) / self.n
        self.sum = max(0.0, self.alpha * self.sum + x - self.mean - self.delta)
        self._drift = self.n >= self.min_instances and self.sum >= self.threshold
        return self


class ADWIN:
    """ADaptive WINdowing: a change in the mean of a stream, in either direction.

    >>> import random
    >>> rng = random.Random(1)
    >>> stream = [rng.gauss(0.2, 0.1) for _ in range(1000)]
    >>> stream += [rng.gauss(0.5, 0.1) for _ in range(1000)]
    >>> adwin = ADWIN()
    >>> first = next(i for i, x in enumerate(stream) if adwin.update(x).drift_detected)
    >>> 1000 <= first < 1100, adwin.width < 1100
    (True, True)
    """

    def __init__(
        self,
        *,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window: int = 5,
        grace_period: int = 10,
    ) -> None:
        if not 0 < delta < 1 or clock < 1 or max_buckets < 2 or min_window < 1:
            raise MonitorError(
                f"ADWIN needs 0 < delta < 1, clock >= 1, max_buckets >= 2 and min_window >= 1; "
                f"got {delta}, {clock}, {max_buckets} and {min_window}."
            )
        self.delta = delta
        self.clock = clock
        self.max_buckets = max_buckets
        self.min_window = min_window
        self.grace_period = grace_period
        # rows[i] holds buckets of 2**i values as [total, variance], oldest first; the values
        # in rows[i + 1] are all older than those in rows[i]
        self._rows: list[list[list[float]]] = [[]]
        self.width = 0
        self.total = 0.0
        self._ticks = 0
        self._drift = False

    @property
    def drift_detected(self) -> bool:
        """Whether the last value completed a change."""
        return self._drift

    @property
    def mean(self) -> float:
        """The mean of the values in the current window."""
        return self.total / self.width if self.width else 0.0

    def update(self, x: float) -> Self:
        """Add one value; the window drops its older part when that part's mean differs."""
        x = float(x)
        self._rows[0].append([x, 0.0])
        self.width += 1
        self.total += x
        self._compress()
        self._ticks += 1
        self._drift = False
        if self._ticks % self.clock == 0 and self.width > self.grace_period:
            while self._cut():
                self._drift = True
        return self

    def _compress(self) -> None:
        size = 1.0
        for i, row in enumerate(self._rows):
            if len(row) <= self.max_buckets:
                break
            (u1, v1), (u2, v2) = row.pop(0), row.pop(0)
            joined = [u1 + u2, v1 + v2 + size * size * (u1 / size - u2 / size) ** 2 / (2 * size)]
            if i + 1 == len(self._rows):
                self._rows.append([])
            self._rows[i + 1].append(joined)
            size *= 2

    def _buckets(self) -> list[tuple[float, float, float]]:
        """(size, total, variance) of every bucket, oldest first."""
        return [
            (float(2**i), u, v)
            for i in range(len(self._rows) - 1, -1, -1)
            for u, v in self._rows[i]
        ]

    def _variance(self, buckets: list[tuple[float, float, float]]) -> float:
        """The variance of the whole window (sum of squared deviations over its length)."""
        n = u = v = 0.0
        for n2, u2, v2 in buckets:
            if n > 0:
                v += v2 + n * n2 * (u / n - u2 / n2) ** 2 / (n + n2)
            else:
                v = v2
            n, u = n + n2, u + u2
        return v / n if n else 0.0

    def _cut(self) -> bool:
        """Drop the oldest bucket when some split shows two different means."""
        buckets = self._buckets()
        if len(buckets) < 2:
            return False
        variance = self._variance(buckets)
        d = math.log(2 * math.log(self.width) / self.delta)
        n0 = u0 = 0.0
        for size, u, _ in buckets[:-1]:
            n0, u0 = n0 + size, u0 + u
            n1, u1 = self.width - n0, self.total - u0
            if n0 < self.min_window or n1 < self.min_window:
                continue
            m_inv = 1 / (n0 - self.min_window + 1) + 1 / (n1 - self.min_window + 1)
            eps = math.sqrt(2 * m_inv * variance * d) + 2 / 3 * d * m_inv
            if abs(u0 / n0 - u1 / n1) > eps:
                self._drop_oldest()
                return True
        return False

    def _drop_oldest(self) -> None:
        i = len(self._rows) - 1
        u, _ = self._rows[i].pop(0)
        self.width -= 2**i
        self.total -= u
        while len(self._rows) > 1 and not self._rows[-1]:
            self._rows.pop()


def concept_drift(errors: Sequence[float], *, detector: Any = None) -> int | None:
    """The index of the first change found in a stream of per-row errors (0/1 for a
    classifier, absolute error for a regressor, in prediction order), or None.

    ``detector`` is a fresh ``ADWIN()`` by default; any object with ``update`` and
    ``drift_detected`` (e.g. ``PageHinkley()``) works.

    >>> import random
    >>> rng = random.Random(0)
    >>> errors = [float(rng.random() < 0.1) for _ in range(2000)]
    >>> concept_drift(errors) is None
    True
    >>> changed = errors + [float(rng.random() < 0.4) for _ in range(2000)]
    >>> 2000 <= concept_drift(changed) < 2300
    True
    """
    detector = ADWIN() if detector is None else detector
    for i, x in enumerate(errors):
        if x is None or (isinstance(x, float) and math.isnan(x)):
            continue
        if detector.update(x).drift_detected:
            return i
    return None
