"""Feature selection checked, not assumed: columns that cannot help are dropped with a
reason a user reads, and importance-based drops are kept only when cross-validation agrees."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.contract import Contract

IMPORTANCE_SHARE = 0.25  # the least important share tried without


def drop_useless(
    frame: pl.DataFrame, columns: Sequence[str], contract: Contract, *, target: str | None
) -> tuple[list[str], list[tuple[str, str]]]:
    """The ``columns`` worth learning from, in order, and ``(column, reason)`` for each left out:
    constant columns (at most one distinct non-null value), exact copies of an earlier kept
    column, and id-like columns (``loopml.core.ids``: integer or text with almost every value
    distinct, or text shaped like UUIDs or hashes).

    An integer column counts as an id only when its values are also dense (like 1..n), increase
    with the row order, or its name says so (``customer_id``, ``order_no``): a nearly unique
    integer measurement stays.

    >>> import polars as pl
    >>> from loopml.core.contract import ColumnSpec, Contract
    >>> f = pl.DataFrame({"id": range(100), "x": [i % 7 for i in range(100)], "c": [1] * 100})
    >>> c = Contract(source="s",
    ...              columns=tuple(ColumnSpec(name=n, type="integer") for n in f.columns))
    >>> kept, dropped = drop_useless(f, f.columns, c, target=None)
    >>> kept, [name for name, _ in dropped]
    (['x'], ['id', 'c'])
    """
    import polars as pl

    names = [c for c in columns if c != target]
    if not names:
        return [], []
    stats = frame.select(
        *[pl.col(c).drop_nulls().n_unique().alias(f"u{i}") for i, c in enumerate(names)],
        *[pl.col(c).null_count().alias(f"n{i}") for i, c in enumerate(names)],
        *[pl.col(c).hash(seed=7).sum().alias(f"h{i}") for i, c in enumerate(names)],
    ).row(0, named=True)
    rows = frame.height
    kept: list[str] = []
    dropped: list[tuple[str, str]] = []
    seen: dict[tuple, list[str]] = {}
    for i, name in enumerate(names):
        distinct, nulls = stats[f"u{i}"], stats[f"n{i}"]
        present = rows - nulls
        if distinct <= 1:
            dropped.append((name, _constant_reason(frame, name, present, rows)))
            continue
        signature = (str(frame.schema[name]), distinct, nulls, stats[f"h{i}"])
        twin = next((k for k in seen.get(signature, ())
                     if frame[k].equals(frame[name], check_names=False)), None)  # fmt: skip
        if twin is not None:
            dropped.append((name, f"an exact copy of column {twin!r}: it adds nothing new"))
            continue
        why = _id_like(frame, name, contract.column(name).type, distinct, present)
        if why is not None:
            dropped.append((name, why))
            continue
        seen.setdefault(signature, []).append(name)
        kept.append(name)
    return kept, dropped


def _constant_reason(frame: pl.DataFrame, name: str, present: int, rows: int) -> str:
    if present == 0:
        return f"every one of its {rows:,} values is missing"
    value = frame[name].drop_nulls()[0]
    missing = "" if present == rows else f" (the other {rows - present:,} are missing)"
    return f"constant: all {present:,} of its values are {value!r}{missing}"


def _id_like(frame: pl.DataFrame, name: str, kind: str, distinct: int,
             present: int) -> str | None:  # fmt: skip
    from loopml.core.ids import id_like

    if kind not in ("integer", "string"):
        return None
    return id_like(frame[name], distinct=distinct, present=present)


def select_by_importance(
    columns: Sequence[str],
    importances: Sequence[float],
    cv_score: Callable[[list[str]], float],
    *,
    baseline: float,
    greater_is_better: bool,
    tolerance: float = 0.0,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Try the model without its zero-importance features, then also without the least
    important quarter (never below one feature); keep each drop only when ``cv_score(kept)``
    (the caller's out-of-fold score) is not worse than ``baseline`` by more than ``tolerance``.
    At most two calls of ``cv_score``; the second only when the first drop was kept or there
    was nothing of zero importance.

    Returns the kept columns (in their order) and ``(column, reason)`` for each dropped one.

    >>> kept, dropped = select_by_importance(
    ...     ["a", "b", "c", "d"], [0.5, 0.3, 0.2, 0.0], lambda cols: 0.9,
    ...     baseline=0.9, greater_is_better=True)
    >>> kept, [c for c, _ in dropped]
    (['a', 'b'], ['d', 'c'])
    """
    if len(columns) != len(importances):
        raise ValueError(f"{len(columns)} columns but {len(importances)} importances")
    importance = dict(zip(columns, (float(v) for v in importances), strict=True))
    kept = list(columns)
    dropped: list[tuple[str, str]] = []

    def acceptable(score: float) -> bool:
        if score is None or math.isnan(score):
            return False
        return score >= baseline - tolerance if greater_is_better else (
            score <= baseline + tolerance)

    zero = [c for c in kept if not importance[c] > 0]
    if zero and len(zero) < len(kept):
        trial = [c for c in kept if c not in zero]
        score = cv_score(trial)
        if not acceptable(score):
            return kept, dropped
        kept = trial
        dropped += [(c, f"zero importance; out-of-fold score {score:.4f} without the "
                        f"{len(zero)} zero-importance feature(s), {baseline:.4f} with them")
                    for c in zero]  # fmt: skip
    n_drop = min(max(1, round(IMPORTANCE_SHARE * len(kept))), len(kept) - 1)
    if n_drop < 1:
        return kept, dropped
    weakest = sorted(kept, key=lambda c: importance[c])[:n_drop]
    trial = [c for c in kept if c not in weakest]
    score = cv_score(trial)
    if acceptable(score):
        kept = trial
        dropped += [(c, f"among the {n_drop} least important (importance {importance[c]:.3g}); "
                        f"out-of-fold score {score:.4f} without them, {baseline:.4f} with all")
                    for c in weakest]  # fmt: skip
    return kept, dropped
