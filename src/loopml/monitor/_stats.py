"""Two-sample drift statistics from counts: what a reference stores and windows merge.

Every statistic here takes the reference's shares (and row count) and a window's ``Counts``,
never the rows themselves, so it is computed once per window whatever the number of
partitions:

- ``psi``: Population Stability Index over the coarse bins (see ``_drift``).
- ``js``: Jensen–Shannon distance (base 2, in [0, 1]) over the coarse bins, missing included.
- ``chi2``/``chi2_p``: the chi-squared test of homogeneity of the 2 x k table of reference and
  window counts over the coarse bins (bins empty on both sides dropped).
- ``ks``/``ks_p``: Kolmogorov–Smirnov distance between the two CDFs of present values,
  evaluated at the reference's 101 quantiles. The CDFs are exact there; between two of them
  the true gap can exceed the largest one found by at most the reference's share in that
  bin (1 %), so ``ks`` is within 0.01 below the exact statistic. The p-value is Kolmogorov's
  asymptotic one with Stephens' small-sample correction.
- ``wasserstein``: the area between the two CDFs, in the column's units, from the counts and
  the sums of the values per quantile bin: exact except inside the few bins where the two CDFs
  cross. ``wasserstein_norm`` divides it by the reference's standard deviation, so that 0.1
  means "a tenth of a standard deviation" for every column.

>>> round(js_distance([0.5, 0.5], [0.5, 0.5]), 6), round(js_distance([1.0, 0.0], [0.0, 1.0]), 6)
(0.0, 1.0)
>>> round(kolmogorov_p(0.0, 100), 3), kolmogorov_p(0.5, 100) < 1e-9
(1.0, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from loopml.core.records import FeatureReference
from loopml.monitor._counts import Counts


def js_distance(reference: Sequence[float], current: Sequence[float]) -> float:
    """Jensen–Shannon distance (square root of the divergence, base 2) of two share vectors."""
    p, q = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if p.sum() == 0 or q.sum() == 0:
        return 0.0
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(np.sqrt(max((kl_p + kl_q) / 2, 0.0)))


def chi2_test(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """(statistic, p-value) of the chi-squared test that both count vectors share one
    distribution.

    >>> stat, p = chi2_test(np.array([50, 50]), np.array([50, 50]))
    >>> round(stat, 6), round(p, 6)
    (0.0, 1.0)
    """
    from scipy.special import chdtrc

    table = np.vstack([reference_counts, current_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    total = table.sum()
    if table.shape[1] < 2 or rows.min() == 0:
        return 0.0, 1.0
    expected = np.outer(rows, cols) / total
    stat = float(((table - expected) ** 2 / expected).sum())
    return stat, float(chdtrc(table.shape[1] - 1, stat))


def kolmogorov_p(distance: float, n_eff: float) -> float:
    """Asymptotic p-value of a two-sample KS distance with effective size n1 n2 / (n1 + n2)."""
    if n_eff <= 0:
        return 1.0
    root = np.sqrt(n_eff)
    lam = (root + 0.12 + 0.11 / root) * distance
    if lam < 0.2:
        return 1.0
    k = np.arange(1, 101)
    value = 2 * np.sum((-1.0) ** (k - 1) * np.exp(-2 * k**2 * lam**2))
    return float(min(max(value, 0.0), 1.0))


def cdfs(ref_fine: Sequence[float], counts: Counts) -> tuple[np.ndarray, np.ndarray, int]:
    """Reference and window CDFs of present values at each fine edge, and the window's
    present values. Window values below the minimum are counted in the window's CDF."""
    fine = counts.fine
    present = int(fine.sum())
    ref_cdf = np.cumsum(np.asarray(ref_fine, dtype=float))
    win_cdf = np.cumsum(fine[:-1]).astype(float)[1:]  # F_w(e_i): everything up to e_i
    win_cdf = win_cdf / present if present else win_cdf
    return ref_cdf, win_cdf, present


def ks_distance(ref_fine: Sequence[float], counts: Counts) -> float:
    """Largest gap between the reference and window CDFs at the reference's quantiles,
    including just below the minimum and at the maximum."""
    ref_cdf, win_cdf, present = cdfs(ref_fine, counts)
    if not present or ref_cdf.size == 0:
        return 0.0
    below = counts.fine[0] / present  # the gap just below the reference minimum
    return float(max(np.abs(win_cdf - ref_cdf).max(), below))


def wasserstein(ref: FeatureReference, counts: Counts) -> float:
    """Area between the two CDFs (Wasserstein-1 distance), from the counts and sums.

    Over each fine bin (a, b], the integral of F_w - F_r is b d(b) - a d(a) - (the window's
    mean mass minus the reference's in the bin), d = F_w - F_r; its absolute value is the
    exact area wherever the CDFs do not cross inside a bin, and a lower bound where they do.
    """
    edges = np.asarray(ref.fine_edges, dtype=float)
    ref_cdf, win_cdf, present = cdfs(ref.fine_shares, counts)
    if not present or ref_cdf.size == 0:
        return 0.0
    origin = float(ref.mean or 0.0)  # values relative to the mean: no cancellation
    e = edges - origin
    p_r = np.asarray(ref.fine_shares, dtype=float)
    mass_r = p_r * (np.asarray(ref.fine_means, dtype=float) - origin)  # sum of x per row
    mass_w = (counts.sums - counts.fine * origin) / present
    d = win_cdf - ref_cdf
    inner = e[1:] * d[1:] - e[:-1] * d[:-1] - (mass_w[2:-1] - mass_r[1:])
    below = counts.fine[0] / present * e[0] - mass_w[0]
    above = mass_w[-1] - counts.fine[-1] / present * e[-1]
    return float(np.abs(inner).sum() + max(below, 0.0) + max(above, 0.0))
