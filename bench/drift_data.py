"""A generated reference/window pair with known shifts, for the drift benchmark.

20 columns (14 numeric, 6 categorical), 9 of them shifted in the window, modestly and in
different ways: the mean (normal, log-normal, uniform), the spread (up and down), the
category mix (5 and 12 categories) and the missing rate (a number 0 % -> 3 %, a category
1 % -> 4 %). More columns repeat the 11 unshifted kinds with new draws.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

Draw = Callable[[np.random.Generator, int, bool], pl.Series]


def _num(ref: Callable, win: Callable | None = None, *, missing: tuple[float, float] = (0, 0),
         integer: bool = False) -> Draw:  # fmt: skip
    def draw(rng: np.random.Generator, n: int, window: bool) -> pl.Series:
        values = (win if window and win else ref)(rng, n)
        series = pl.Series(values.astype(np.int64) if integer else values)
        return _with_missing(series, rng, missing[window])

    return draw


def _cat(shares: list[float], window_shares: list[float] | None = None, *,
         missing: tuple[float, float] = (0, 0), prefix: str = "c") -> Draw:  # fmt: skip
    labels = pl.Series([f"{prefix}{i}" for i in range(len(shares))])

    def draw(rng: np.random.Generator, n: int, window: bool) -> pl.Series:
        p = np.asarray(window_shares if window and window_shares else shares, dtype=float)
        codes = rng.choice(len(p), size=n, p=p / p.sum())
        return _with_missing(labels.gather(codes), rng, missing[window])

    return draw


def _with_missing(series: pl.Series, rng: np.random.Generator, share: float) -> pl.Series:
    if not share:
        return series
    mask = pl.Series(rng.random(series.len()) < share)
    return series.to_frame("v").select(pl.when(mask).then(None).otherwise(pl.col("v"))).to_series()


def _zipf(k: int) -> list[float]:
    p = 1 / np.arange(1, k + 1)
    return list(p / p.sum())


_MIX12 = _zipf(12)
_MIX12_WINDOW = [_MIX12[0] - 0.05, *_MIX12[1:8], *(s + 0.0125 for s in _MIX12[8:])]

SHIFTED: dict[str, Draw] = {
    "mean_normal": _num(lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0.1, 1, n)),
    "mean_lognormal": _num(lambda r, n: r.lognormal(0, 1, n), lambda r, n: r.lognormal(0.1, 1, n)),
    "mean_uniform": _num(lambda r, n: r.uniform(0, 1, n), lambda r, n: r.uniform(0.03, 1.03, n)),
    "spread_up": _num(lambda r, n: r.normal(5, 2, n), lambda r, n: r.normal(5, 2.4, n)),
    "spread_down": _num(lambda r, n: r.normal(10, 3, n), lambda r, n: r.normal(10, 2.55, n)),
    "missing_number": _num(lambda r, n: r.exponential(1, n), missing=(0.0, 0.03)),
    "mix_5": _cat([0.3, 0.25, 0.2, 0.15, 0.1], [0.24, 0.25, 0.2, 0.15, 0.16]),
    "mix_12": _cat(_MIX12, _MIX12_WINDOW),
    "missing_category": _cat([0.4, 0.3, 0.2, 0.1], missing=(0.01, 0.04)),
}
STEADY: dict[str, Draw] = {
    "normal": _num(lambda r, n: r.normal(3, 1.5, n)),
    "lognormal": _num(lambda r, n: r.lognormal(1, 0.8, n)),
    "uniform": _num(lambda r, n: r.uniform(-5, 5, n)),
    "exponential": _num(lambda r, n: r.exponential(2, n), missing=(0.02, 0.02)),
    "poisson": _num(lambda r, n: r.poisson(4, n).astype(float), integer=True),
    "gamma": _num(lambda r, n: r.gamma(2, 3, n)),
    "student_t": _num(lambda r, n: r.standard_t(3, n)),
    "integer_0_100": _num(lambda r, n: r.integers(0, 101, n).astype(float), integer=True),
    "category_3": _cat([0.5, 0.3, 0.2]),
    "category_8": _cat(_zipf(8)),
    "category_30": _cat(_zipf(30), missing=(0.005, 0.005)),
}


def columns(count: int = 20) -> dict[str, Draw]:
    """``count`` columns: the 9 shifted ones, then the steady kinds, repeated as needed."""
    out = dict(SHIFTED)
    steady = list(STEADY.items())
    i = 0
    while len(out) < count:
        name, draw = steady[i % len(steady)]
        out[name if i < len(steady) else f"{name}_{i // len(steady)}"] = draw
        i += 1
    return out


def make_frame(rows: int, count: int = 20, *, window: bool, seed: int = 0) -> pl.DataFrame:
    """The reference (``window=False``) or the window of ``rows`` rows and ``count`` columns."""
    rng = np.random.default_rng([seed, int(window)])
    return pl.DataFrame(
        {name: draw(rng, rows, window).alias(name) for name, draw in columns(count).items()}
    )


def kinds(count: int = 20) -> dict[str, str]:
    """Contract type of each column: "float", "integer" or "category"."""
    frame = make_frame(10, count, window=False)
    return {
        c: "integer" if frame[c].dtype.is_integer() else "float" if frame[c].dtype.is_float()
        else "category"
        for c in frame.columns
    }  # fmt: skip
