"""Known-good configurations per learner, chosen by the data's size and shape, and the one
order in which they are tried across learners.

The idea is the zero-shot portfolio: a short list of configurations that did well on many
datasets beats a search from scratch at a small budget. Cheap, strong configurations come
first (a default LightGBM, a linear model, extra trees ...) so that a short budget still ends
with good and diverse candidates for the ensemble; variants follow while time remains. The
values themselves are data-dependent defaults: fewer leaves and smaller leaf sizes on small
data (LightGBM's own defaults overfit a few hundred rows), fewer trees on large data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.core.records import Candidate, Leaderboard

WARM_SPECS = 3  # the champion's configurations a retrain tries first, at most
DERIVED = ("n_rounds",)  # recorded with a candidate's parameters, chosen by its own fit


@dataclass(frozen=True, slots=True)
class Shape:
    """What the portfolio looks at: rows (of the search sample), feature columns, classes
    (0 for regression)."""

    rows: int
    features: int
    classes: int = 0


@dataclass(frozen=True, slots=True)
class Spec:
    """One configuration to try: ``learner/variant`` and its parameters."""

    learner: str
    variant: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.learner}/{self.variant}"


# (learner, variant) in the order they are tried; a variant missing for a shape is skipped
PRIORITY = (
    ("lightgbm", "default"), ("linear", "default"), ("extra_trees", "default"),
    ("xgboost", "default"), ("random_forest", "default"), ("lightgbm", "xt"),
    ("hist_gbm", "default"), ("knn", "default"), ("lightgbm", "small"), ("lightgbm", "large"),
    ("xgboost", "deep"), ("extra_trees", "wide"), ("lightgbm", "slow"),
    ("random_forest", "wide"), ("linear", "strong"), ("xgboost", "shallow"),
    ("hist_gbm", "small"), ("knn", "near"), ("linear", "weak"),
)


def warm_specs(board: Leaderboard, *, limit: int = WARM_SPECS) -> list[Spec]:
    """The configurations of a model's search to try first when the model is trained again
    (a champion's, before its challenger's portfolio): its ensemble's members by weight, or
    the chosen candidate, without what their fits chose (the boosting rounds early stopping
    found). A candidate fitted on fewer columns is tried on all of them."""
    by_name = {c.name: c for c in board.candidates if c.status == "ok"}
    names = [n for n, w in sorted(board.ensemble, key=lambda m: -m[1]) if w > 0]
    chosen = [by_name[n] for n in names if n in by_name] or [board.best]
    specs: list[Spec] = []
    for c in chosen:
        if c.learner == "ensemble" or c.status != "ok":
            continue
        spec = _as_spec(c)
        if not spec.variant.startswith("champion-"):  # a warm start's own keeps its name
            spec = Spec(spec.learner, f"champion-{spec.variant}", spec.params)
        if all((spec.learner, spec.params) != (s.learner, s.params) for s in specs):
            specs.append(spec)
    return specs[:limit]


def warmed_with(board: Leaderboard) -> list[Spec]:
    """The configurations a recorded search was warmed with (its ``champion`` candidates, in
    the order tried), so that it can be run again exactly (``loopml reproduce``)."""
    tried = sorted((c for c in board.candidates if c.origin == "champion"),
                   key=lambda c: c.trial)
    return [_as_spec(c) for c in tried]


def _as_spec(c: Candidate) -> Spec:
    """The configuration a candidate tried (``learner/variant``, its parameters without
    what its fit chose)."""
    variant = c.name.split("/")[1] if "/" in c.name else "default"
    return Spec(c.learner, variant, {k: v for k, v in c.params.items() if k not in DERIVED})


def first(warm: Sequence[Spec], specs: list[Spec]) -> list[Spec]:
    """``warm`` ahead of the portfolio ``specs``; a portfolio entry with a warm entry's
    learner and parameters is tried once, as the warm one."""
    taken = [(w.learner, w.params) for w in warm]
    return [*warm, *(s for s in specs if (s.learner, s.params) not in taken)]


def portfolio(learners: tuple[str, ...] | list[str], task: str, shape: Shape) -> list[Spec]:
    """The configurations to try for ``learners``, in priority order.

    >>> [s.name for s in portfolio(["linear", "lightgbm"], "classification", Shape(500, 8, 2))][:3]
    ['lightgbm/default', 'linear/default', 'lightgbm/xt']
    """
    specs = []
    for learner, variant in PRIORITY:
        if learner not in learners:
            continue
        params = _variants(learner, task, shape).get(variant)
        if params is not None:
            specs.append(Spec(learner, variant, params))
    return specs


def _variants(learner: str, task: str, shape: Shape) -> dict[str, dict[str, Any]]:
    n, clf = shape.rows, task == "classification"
    if learner == "lightgbm":
        leaf = int(min(20, max(3, n // 100)))  # LightGBM's 20 starves a few hundred rows
        leaves = 31 if n >= 2000 else 15
        default = {"learning_rate": 0.05, "num_leaves": leaves, "min_child_samples": leaf,
                   "subsample": 0.9, "colsample_bytree": 0.9, "reg_lambda": 0.01}
        out = {
            "default": default,
            "xt": {**default, "extra_trees": True},
            "slow": {"learning_rate": 0.02, "num_leaves": 53, "min_child_samples": 14,
                     "colsample_bytree": 0.7, "subsample": 1.0, "reg_lambda": 0.1},
        }
        if n < 5000:
            out["small"] = {"learning_rate": 0.05, "num_leaves": 8, "min_child_samples": 5,
                            "colsample_bytree": 0.5, "subsample": 0.8, "reg_lambda": 5.0}
        if n >= 1000:
            out["large"] = {"learning_rate": 0.03, "num_leaves": 128, "min_child_samples": 3,
                            "colsample_bytree": 0.9, "subsample": 1.0, "reg_lambda": 0.0}
        return out
    if learner == "xgboost":
        return {
            "default": {"learning_rate": 0.05, "max_depth": 6, "min_child_weight": 1.0,
                        "subsample": 0.9, "colsample_bytree": 0.9, "reg_lambda": 1.0},
            "deep": {"learning_rate": 0.03, "max_depth": 10, "min_child_weight": 0.6,
                     "subsample": 0.9, "colsample_bytree": 0.7, "reg_lambda": 1.0},
            "shallow": {"learning_rate": 0.1, "max_depth": 3, "min_child_weight": 1.0,
                        "subsample": 0.8, "colsample_bytree": 0.7, "reg_lambda": 3.0},
        }
    if learner == "linear":
        key = "C" if clf else "alpha"
        strong, weak = (0.1, 10.0) if clf else (10.0, 0.1)
        return {"default": {key: 1.0}, "strong": {key: strong}, "weak": {key: weak}}
    if learner in ("random_forest", "extra_trees"):
        trees = 300 if n < 20_000 else 150 if n < 100_000 else 80
        base = "sqrt" if clf else 1.0
        return {
            "default": {"n_estimators": trees, "max_features": base, "min_samples_leaf": 1},
            "wide": {"n_estimators": trees, "max_features": 0.5 if clf else 0.6,
                     "min_samples_leaf": 2},
        }
    if learner == "hist_gbm":
        return {
            "default": {"learning_rate": 0.1, "max_leaf_nodes": 31, "l2_regularization": 1e-4},
            "small": {"learning_rate": 0.05, "max_leaf_nodes": 15, "l2_regularization": 1.0},
        }
    if learner == "knn" and n <= 50_000:  # prediction cost grows with the training rows
        return {"default": {"n_neighbors": 10, "weights": "distance"},
                "near": {"n_neighbors": 5, "weights": "uniform"}}
    return {}
