"""An isolation forest (Liu, Ting and Zhou, 2008) in NumPy, for the profile's anomalies.

Each tree isolates a random subsample of ``max_samples`` rows by random splits (a feature
that varies in the node, a threshold drawn uniformly between its minimum and maximum) down to
single rows or the depth limit ``ceil(log2(max_samples))``. A row's path length is the depth
of the leaf it reaches plus the average path length of an unbuilt tree over the rows left in
that leaf, ``c(n)``; its anomaly score is ``2 ** (-mean path length / c(max_samples))``,
near 1 for rows few splits isolate and near or under 0.5 for ordinary rows (what
scikit-learn's ``-score_samples`` gives; rows scoring over 0.5 are the ones its ``predict``
calls outliers). The trees grow together a level at a step, and every row walks down a tree
with the others, so a tree costs a few vector operations per level. Written here rather than
taken from scikit-learn, whose import alone took longer than the rest of a profile.
"""

from __future__ import annotations

import math

import numpy as np

EULER = 0.5772156649015329


def average_path(n: np.ndarray | int) -> np.ndarray:
    """``c(n)``: the average path length of an unsuccessful search in a binary search tree of
    ``n`` rows (0 for one row, 1 for two).

    >>> average_path(np.array([1, 2, 256])).round(3).tolist()
    [0.0, 1.0, 10.245]
    """
    n = np.asarray(n, dtype=np.float64)
    big = 2.0 * (np.log(np.maximum(n - 1.0, 1.0)) + EULER) - 2.0 * (n - 1.0) / np.maximum(n, 1.0)
    return np.where(n > 2, big, np.where(n == 2, 1.0, 0.0))


def isolation_scores(x: np.ndarray, *, trees: int = 100, max_samples: int = 256,
                     seed: int = 0) -> np.ndarray:
    """The anomaly score of every row of ``x`` (rows x features), in (0, 1).

    >>> rng = np.random.default_rng(0)
    >>> x = np.vstack([rng.normal(0, 1, (300, 2)), [[8.0, 8.0]]])
    >>> scores = isolation_scores(x)
    >>> int(scores.argmax()), bool(scores[-1] > 0.6 > np.median(scores))
    (300, True)
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    psi = max(2, min(max_samples, n))
    rng = np.random.default_rng(seed)
    limit = math.ceil(math.log2(psi))
    forest = _grow(x, trees, psi, limit, rng)
    depth = _path_lengths(forest, x, limit)
    return 2.0 ** (-depth / float(average_path(psi)))


def _grow(x: np.ndarray, trees: int, psi: int, limit: int,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every tree at once, one level a step, each a complete binary tree of depth ``limit``
    in heap order (node ``h``'s children are ``2h + 1`` and ``2h + 2``): per tree and node the
    feature and threshold of its split, and per node the path length of a row that ends there
    (its depth plus ``c`` of the rows it holds), set on the last level. A leaf above the last
    level passes its rows down its left children (threshold +inf) to the node that holds its
    path length, so every row takes exactly ``limit`` steps."""
    n, width = x.shape
    size = 2 ** (limit + 1) - 1
    feature = np.zeros((trees, size), dtype=np.int64)
    threshold = np.full((trees, size), np.inf)
    value = np.zeros((trees, size))
    picked = np.concatenate([rng.choice(n, size=psi, replace=False) for _ in range(trees)])
    sample = x[picked]
    tree, node = np.repeat(np.arange(trees), psi), np.zeros(trees * psi, dtype=np.int64)
    for depth in range(limit + 1):
        key = tree * size + node
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        ids, counts = ordered[first], np.diff(np.r_[first, ordered.size])
        local = np.empty_like(key)
        local[order] = np.repeat(np.arange(ids.size), counts)
        grouped = sample[order]
        lo = np.minimum.reduceat(grouped, first, axis=0)
        hi = np.maximum.reduceat(grouped, first, axis=0)
        varying = hi > lo
        split = varying.any(axis=1) & (counts > 1) & (depth < limit)
        ends = ids[~split]  # leaves: down the left children to the last level
        reach = ends % size
        for _ in range(depth, limit):
            reach = 2 * reach + 1
        value[ends // size, reach] = depth + average_path(counts[~split])
        if not split.any():
            break
        draw = np.where(varying, rng.random((len(ids), width)), -1.0)
        f = draw.argmax(axis=1)
        span = np.arange(len(ids))
        cut = lo[span, f] + rng.random(len(ids)) * (hi[span, f] - lo[span, f])
        inner = ids[split]
        feature[inner // size, inner % size] = f[split]
        threshold[inner // size, inner % size] = cut[split]
        keep = split[local]  # rows still in a node that splits
        mine = local[keep]
        goes_left = sample[keep, f[mine]] < cut[mine]
        tree, sample = tree[keep], sample[keep]
        node = 2 * node[keep] + np.where(goes_left, 1, 2)
    return feature, threshold, value


def _path_lengths(forest: tuple[np.ndarray, ...], x: np.ndarray, limit: int) -> np.ndarray:
    """Each row's path length averaged over the trees: a tree at a time, every row walks
    ``limit`` steps down it (in place: a step is a few numpy calls on one row-sized array)."""
    feature, threshold, value = forest
    n = x.shape[0]
    columns = np.ascontiguousarray(x.T).ravel()  # feature f of row i at f * n + i
    rows = np.arange(n)
    total = np.zeros(n)
    node, at = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    left = np.empty(n, dtype=bool)
    for t in range(feature.shape[0]):
        f, cut = feature[t], threshold[t]
        node[:] = 0
        for _ in range(limit):
            np.take(f, node, out=at)
            at *= n
            at += rows
            np.less(columns[at], cut[node], out=left)
            node *= 2
            node += 2
            node -= left  # 2h + 1 to the left, 2h + 2 to the right
        total += value[t, node]
    return total / feature.shape[0]
