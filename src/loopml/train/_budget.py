"""One clock for the whole search: portfolio, model-based search, ensembling and the final fit.

The search stops early enough to leave a reserve for what must come after it (ensembling and
the final refit), and every phase records the seconds it took, so that a run can show where
its budget went. In deterministic mode the clock never stops anything: trial counts do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

MIN_RESERVE_S = 0.5  # ensembling, calibration and assembling the final model
MAX_RESERVE_SHARE = 0.35  # of the budget, at most, held back for the final refit


@dataclass
class Clock:
    """Seconds left of ``budget_s`` since the clock was made, with the spending per phase.

    >>> c = Clock(10.0)
    >>> 9.0 < c.left() <= 10.0 and not c.out()
    True
    """

    budget_s: float
    deterministic: bool = False
    started: float = field(default_factory=time.monotonic)
    phases: dict[str, float] = field(default_factory=dict)
    _phase: str | None = None
    _phase_started: float = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        """Seconds until the deadline (negative past it)."""
        return self.budget_s - self.elapsed()

    def out(self, reserve: float = 0.0) -> bool:
        """Whether work that must leave ``reserve`` seconds should stop now (never when
        deterministic)."""
        return not self.deterministic and self.left() <= reserve

    def reserve_for(self, refit_estimate_s: float) -> float:
        """Seconds the search leaves for ensembling and the final refit: the estimated refit
        (capped at a share of the budget; a refit that does not fit uses the fold models)."""
        return MIN_RESERVE_S + min(max(refit_estimate_s, 0.0), MAX_RESERVE_SHARE * self.budget_s)

    def phase(self, name: str) -> None:
        """Start phase ``name`` (the previous one ends now)."""
        now = time.monotonic()
        if self._phase is not None:
            self.phases[self._phase] = round(
                self.phases.get(self._phase, 0.0) + now - self._phase_started, 3)
        self._phase, self._phase_started = name, now

    def stop(self) -> float:
        """End the current phase; the seconds spent in all."""
        self.phase("_")
        self.phases.pop("_", None)
        self._phase = None
        return round(self.elapsed(), 3)
