"""The compiled form of a fitted random forest or extra-trees model: every tree's nodes in one
set of flat arrays, walked for all (row, tree) pairs at once, one numpy step per depth level.

scikit-learn's forest dispatches each tree through joblib (~0.1 ms a tree on one row); here a
level costs a handful of numpy calls whatever the number of trees, and pairs that reached a
leaf drop out of the walk every few levels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

_CHECK_EVERY = 8  # levels between checks for pairs that reached their leaf
_PAIRS = 1 << 18  # (row, tree) pairs walked at once


def compile_forest(est: Any, task: str, classes: Any) -> dict[str, Any]:
    """The arrays of a fitted single-output forest, as keyword arguments of ``ForestArrays``."""
    trees = [e.tree_ for e in est.estimators_]
    sizes = np.array([t.node_count for t in trees], dtype=np.intp)
    roots = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.intp)
    offset = np.repeat(roots, sizes)
    own = np.arange(int(sizes.sum()), dtype=np.intp)
    left = np.concatenate([t.children_left for t in trees]).astype(np.intp)
    right = np.concatenate([t.children_right for t in trees]).astype(np.intp)
    leaf = left < 0
    # a leaf points to itself on both sides, so a walk may go on past it without checks
    kids = np.empty(2 * own.size, dtype=np.intp)
    kids[0::2] = np.where(leaf, own, right + offset)
    kids[1::2] = np.where(leaf, own, left + offset)
    feature = np.where(leaf, 0, np.concatenate([t.feature for t in trees])).astype(np.intp)
    threshold = np.concatenate([t.threshold for t in trees]).astype(np.float64)
    missing_left = np.concatenate([
        np.asarray(getattr(t, "missing_go_to_left", np.zeros(t.node_count)), dtype=bool)
        for t in trees])  # fmt: skip
    if task == "classification":
        n = len(classes)
        value = np.concatenate([t.value[:, 0, :n] for t in trees]).astype(np.float64)
        total = value.sum(axis=1, keepdims=True)
        # recent scikit-learn stores class fractions already; older stored weighted counts
        value = np.divide(value, total, out=value, where=total > 0)
    else:
        value = np.concatenate([t.value[:, 0, 0] for t in trees]).astype(np.float64)
    return {"kids": kids, "feature": feature, "threshold": threshold,
            "missing_left": missing_left, "value": value, "roots": roots,
            "depth": int(max(t.max_depth for t in trees)),
            "n_features": int(est.n_features_in_)}  # fmt: skip


class ForestArrays:
    """The flat node arrays of all trees and the level-by-level walk over them."""

    names = ("kids", "feature", "threshold", "missing_left", "value", "roots")

    def __init__(self, *, kids: np.ndarray, feature: np.ndarray, threshold: np.ndarray,
                 missing_left: np.ndarray, value: np.ndarray, roots: np.ndarray,
                 depth: int, n_features: int):  # fmt: skip
        self.missing_left = np.asarray(missing_left, dtype=bool)
        self.value = np.asarray(value, dtype=np.float64)
        self.roots = np.asarray(roots, dtype=np.intp)
        self.depth, self.n_features = int(depth), int(n_features)
        # The walk holds 2 * node, so that a child is kids[2 * node + went_left] without a
        # multiplication. NaN fails every comparison (goes right); a node whose NaN goes
        # left reads a copy of the row with NaN as -inf, below every threshold (a split on
        # missingness alone has threshold +inf), so NaN needs no step of its own.
        self._kids2 = 2 * np.asarray(kids, dtype=np.intp)
        feature = np.asarray(feature, dtype=np.intp)
        self._feature2 = np.repeat(feature + self.n_features * self.missing_left, 2)
        self._threshold2 = np.repeat(np.asarray(threshold, dtype=np.float64), 2)
        self._roots2 = 2 * self.roots

    def to_spec(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        small = np.int32 if self._kids2.size < 2**31 else np.int64  # node ids, stored
        feature = self._feature2[0::2] - self.n_features * self.missing_left
        found = {"kids": (self._kids2 >> 1).astype(small), "feature": feature.astype(np.int32),
                 "threshold": self._threshold2[0::2], "missing_left": self.missing_left,
                 "value": self.value, "roots": self.roots.astype(small)}  # fmt: skip
        for name in self.names:
            arrays[prefix + name] = found[name]
        return {"depth": self.depth}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                  prefix: str) -> ForestArrays:  # fmt: skip
        return cls(**{name: arrays[prefix + name] for name in cls.names}, depth=spec["depth"],
                   n_features=spec["n_features"])

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """The leaf of every (row, tree) pair, shape (rows, trees)."""
        # scikit-learn casts X to float32 and compares it with the float64 thresholds
        X32 = np.asarray(X, dtype=np.float32)
        wide = np.concatenate([X32, np.where(np.isnan(X32), np.float32(-np.inf), X32)], axis=1)
        flat = wide.astype(np.float64).ravel()  # the same values; float64 compares faster
        rows, trees = X.shape[0], self.roots.size
        node = np.tile(self._roots2, rows)
        base = None if rows == 1 else np.repeat(
            np.arange(rows, dtype=np.intp) * wide.shape[1], trees)
        full = where = None
        kids, feature, threshold = self._kids2, self._feature2, self._threshold2
        for level in range(self.depth):
            if level % _CHECK_EVERY == _CHECK_EVERY - 1:
                active = kids[node] != node
                if not active.all():
                    if full is None:
                        full, where = node, np.arange(node.size)
                    else:
                        full[where] = node
                    where, node = where[active], node[active]
                    base = None if base is None else base[active]
                    if node.size == 0:
                        break
            at = feature[node] if base is None else feature[node] + base
            node = kids[node + (flat[at] <= threshold[node])]
        if full is not None:
            full[where] = node
            node = full
        return (node >> 1).reshape(rows, trees)

    def mean_value(self, X: np.ndarray) -> np.ndarray:
        """The mean over trees of each row's leaf value (class fractions or a number)."""
        step = max(1, _PAIRS // self.roots.size)
        if X.shape[0] > step:  # bounded memory for a large batch
            return np.concatenate([self.mean_value(X[i:i + step])
                                   for i in range(0, X.shape[0], step)])  # fmt: skip
        leaves = self.leaves(X)
        return self.value[leaves].sum(axis=1) / leaves.shape[1]
