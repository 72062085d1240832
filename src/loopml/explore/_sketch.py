"""Mergeable sketches for statistics computed part by part: quantiles with a rank error the
sketch states itself, distinct counts (HyperLogLog) and frequent values (Misra-Gries).

Each merges with another of its kind in any grouping; what is exact stays exact, and what is
sketched keeps a bound of its error that grows with the merges that lost information.

>>> import numpy as np
>>> a, b = QuantileSketch.of(np.arange(50.0)), QuantileSketch.of(np.arange(50.0, 100.0))
>>> merged = a.merge(b)
>>> merged.n, merged.rank_error, merged.quantile(0.5)
(100, 0.0, 49.5)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from loopml.core.frames import own_buffers

EXACT_VALUES = 65_536  # a quantile sketch keeps every value up to this many
SKETCH_K = 4_096  # beyond them, at most this many values per level of weight 2^h
HLL_P = 14  # 16,384 registers: a distinct count's standard error is 1.04 / 128 = 0.8%
HLL_ERROR = 3 * 1.04 / 2 ** (HLL_P / 2)  # the bound the tests hold it to: three errors


@dataclass(slots=True)
class QuantileSketch:
    """Values as levels of a compactor sketch: a value at level h stands for 2^h values.

    While it holds at most ``exact`` values (and never compacted) it keeps every one, and its
    quantiles are those of the data (linear interpolation, as Polars). Beyond, a level longer
    than ``k`` is sorted and halved (every other value kept, weight doubled): that moves any
    value's rank by at most its weight, which ``error`` adds up. So for every x, the sketch's
    count of values <= x is within ``error`` of the data's, and a quantile it returns is a
    value whose rank in the data is within ``error`` of the one asked for
    (``rank_error`` = error / n; about log2(n / k) / k, 0.4% at 50 million values).
    """

    levels: list[np.ndarray] = field(default_factory=list)
    n: int = 0
    error: float = 0.0
    compactions: int = 0
    k: int = SKETCH_K
    exact: int = EXACT_VALUES

    @classmethod
    def of(cls, values: np.ndarray, *, k: int = SKETCH_K,
           exact: int = EXACT_VALUES) -> QuantileSketch:
        values = np.asarray(values, dtype=float)
        out = cls(levels=[np.sort(values)], n=int(values.size), k=k, exact=exact)
        out._compact()
        return out

    @property
    def rank_error(self) -> float:
        """The largest error of a quantile's rank, as a share of the values (0: exact)."""
        return self.error / self.n if self.n else 0.0

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        depth = max(len(self.levels), len(other.levels))
        levels = []
        for h in range(depth):
            mine = self.levels[h] if h < len(self.levels) else np.empty(0)
            theirs = other.levels[h] if h < len(other.levels) else np.empty(0)
            levels.append(np.sort(np.concatenate([mine, theirs])))
        out = QuantileSketch(levels=levels, n=self.n + other.n, error=self.error + other.error,
                             compactions=self.compactions + other.compactions,
                             k=min(self.k, other.k), exact=min(self.exact, other.exact))
        out._compact()
        return out

    def _compact(self) -> None:
        if self.error == 0 and len(self.levels) <= 1 and self.n <= self.exact:
            return  # every value kept
        h = 0
        while h < len(self.levels):
            level = self.levels[h]
            if level.size > self.k:
                level = np.sort(level)
                keep = level.size % 2  # an odd value out stays at its level
                held, halved = level[:keep].copy(), level[keep:]  # copies, not views that
                offset = self.compactions % 2  # would hold the whole level; alternate, so
                up = halved[offset::2].copy()  # the errors do not pile one way
                self.compactions += 1
                self.error += 2.0**h
                self.levels[h] = held
                if h + 1 == len(self.levels):
                    self.levels.append(up)
                else:
                    self.levels[h + 1] = np.sort(np.concatenate([self.levels[h + 1], up]))
            h += 1

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile: exact (linear interpolation) while every value is kept, else
        the smallest kept value whose estimated rank reaches q * n."""
        if self.n == 0:
            return None
        if self.error == 0 and len(self.levels) == 1:
            return float(np.quantile(self.levels[0], q, method="linear"))
        values = np.concatenate(self.levels)
        weights = np.concatenate([np.full(lv.size, 2.0**h) for h, lv in enumerate(self.levels)])
        order = np.argsort(values, kind="stable")
        values, cumulative = values[order], np.cumsum(weights[order])
        at = int(np.searchsorted(cumulative, q * self.n, side="left"))
        return float(values[min(at, values.size - 1)])


@dataclass(slots=True)
class DistinctSketch:
    """HyperLogLog registers of the values' 64-bit hashes (Polars ``hash``, seed 0)."""

    registers: np.ndarray = field(default_factory=lambda: np.zeros(2**HLL_P, np.uint8))

    @classmethod
    def of(cls, values: pl.Series) -> DistinctSketch:
        out = cls()
        hashes = values.drop_nulls().hash(seed=0).to_numpy().astype(np.uint64)
        if hashes.size:
            index = (hashes >> np.uint64(64 - HLL_P)).astype(np.int64)
            rest = (hashes & np.uint64((1 << (64 - HLL_P)) - 1)).astype(float)
            bits = 64 - HLL_P
            rank = np.where(rest > 0, bits - np.floor(np.log2(np.maximum(rest, 1))), bits + 1)
            np.maximum.at(out.registers, index, rank.astype(np.uint8))
        return out

    def merge(self, other: DistinctSketch) -> DistinctSketch:
        return DistinctSketch(np.maximum(self.registers, other.registers))

    def estimate(self) -> int:
        m = float(self.registers.size)
        alpha = 0.7213 / (1 + 1.079 / m)
        raw = alpha * m * m / float(np.sum(2.0 ** -self.registers.astype(float)))
        zeros = int(np.count_nonzero(self.registers == 0))
        if raw <= 2.5 * m and zeros:  # small range: linear counting
            return int(round(m * np.log(m / zeros)))
        return int(round(raw))


def merge_counts(a: pl.DataFrame, b: pl.DataFrame) -> pl.DataFrame:
    """Two tables of (value, count) as one, counts of a value added, most frequent first and
    ties by value, so any grouping of merges gives the same table."""
    both = pl.concat([a, b], how="vertical_relaxed")
    name = both.columns[0]
    merged = both.group_by(name).agg(pl.col("count").sum())
    return sort_counts(merged)


def sort_counts(counts: pl.DataFrame) -> pl.DataFrame:
    name = counts.columns[0]
    return counts.sort(["count", pl.col(name).cast(pl.String)], descending=[True, False],
                       nulls_last=True)


def keep_frequent(counts: pl.DataFrame, keep: int) -> tuple[pl.DataFrame, int]:
    """``counts`` in any order, sorted as ``sort_counts``; beyond ``keep`` values, Misra-Gries: at most ``keep`` values, every count less the (keep+1)-th largest, and
    that amount (each value's count is now under its true one by at most the sum of these
    amounts over the merges)."""
    if counts.height <= keep:
        return sort_counts(counts), 0
    cut = int(counts["count"].top_k(keep + 1).min())  # type: ignore[arg-type]
    kept = counts.filter(pl.col("count") > cut).with_columns(pl.col("count") - cut)
    return own_buffers(sort_counts(kept)), cut  # not the whole part's text
