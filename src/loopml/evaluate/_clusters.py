"""Cluster profiles: how many rows each cluster has and what sets it apart from all rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.core.records import ClusterProfile, ClusterTrait

if TYPE_CHECKING:
    import polars as pl

TOP_TRAITS = 5  # traits listed per cluster
MIN_EFFECT = 0.25  # weaker differences (in standard deviations) are not listed
_CLUSTER = "__cluster__"
MISSING = "(missing)"


def cluster_profiles(
    frame: pl.DataFrame, labels: Any, *, columns: Sequence[str]
) -> tuple[ClusterProfile, ...]:
    """Each cluster's size and its strongest traits among ``columns`` of ``frame``:

    - a numeric column: the cluster's mean against the overall mean, in overall standard
      deviations;
    - a text, category or boolean column: its most over-represented value, the value's share in
      the cluster against its share overall, in standard deviations of the value's indicator.

    Traits weaker than 0.25 standard deviations are left out; at most five per cluster,
    strongest first. Missing values are left out of means and counted as a ``(missing)`` value.

    >>> import polars as pl
    >>> f = pl.DataFrame({"size": [1.0, 1.2, 0.9, 9.0, 9.5, 8.8], "kind": list("aabbbb")})
    >>> p = cluster_profiles(f, [0, 0, 0, 1, 1, 1], columns=["size", "kind"])
    >>> [(c.cluster, c.rows, c.traits[0].feature) for c in p]
    [('0', 3, 'size'), ('1', 3, 'size')]
    >>> p[0].traits[1].value, p[0].traits[1].cluster, p[0].traits[1].overall
    ('a', 0.6667, 0.3333)
    """
    import polars as pl

    labels = np.asarray(labels)
    present = [c for c in columns if c in frame.columns]
    numeric = [c for c in present if frame.schema[c].is_numeric()]
    kinds = (pl.String, pl.Categorical, pl.Enum, pl.Boolean)
    categorical = [c for c in present if isinstance(frame.schema[c], kinds)
                   or frame.schema[c] in kinds]  # fmt: skip
    f = frame.select(present).with_columns(pl.Series(_CLUSTER, labels))
    rows = f.height
    traits: dict[Any, list[ClusterTrait]] = {}
    sizes = dict(f.group_by(_CLUSTER).len().iter_rows())
    if numeric:
        overall = f.select(*[pl.col(c).cast(pl.Float64).mean().alias(f"m{i}")
                             for i, c in enumerate(numeric)],
                           *[pl.col(c).cast(pl.Float64).std().alias(f"s{i}")
                             for i, c in enumerate(numeric)]).row(0, named=True)  # fmt: skip
        means = f.group_by(_CLUSTER).agg(
            *[pl.col(c).cast(pl.Float64).mean().alias(f"m{i}") for i, c in enumerate(numeric)]
        )
        for row in means.iter_rows(named=True):
            for i, c in enumerate(numeric):
                mean, centre, sd = row[f"m{i}"], overall[f"m{i}"], overall[f"s{i}"]
                if mean is None or centre is None or not sd:
                    continue
                traits.setdefault(row[_CLUSTER], []).append(ClusterTrait(
                    feature=c, value="", cluster=_round(mean), overall=_round(centre),
                    effect=round((mean - centre) / sd, 3)))  # fmt: skip
    for c in categorical:
        text = pl.col(c).cast(pl.String).fill_null(MISSING).alias("value")
        counts = f.group_by(_CLUSTER, text).len()
        totals = counts.group_by("value").agg(pl.col("len").sum().alias("total"))
        shares = counts.join(totals, on="value").with_columns(
            (pl.col("total") / rows).alias("overall"),
            (pl.col("len") / pl.col(_CLUSTER).replace_strict(sizes, return_dtype=pl.Int64))
            .alias("share"),
        ).filter((pl.col("overall") > 0) & (pl.col("overall") < 1)).with_columns(
            ((pl.col("share") - pl.col("overall"))
             / (pl.col("overall") * (1 - pl.col("overall"))).sqrt()).alias("effect")
        )  # fmt: skip
        top = shares.sort("effect", descending=True).group_by(_CLUSTER, maintain_order=True).first()
        for row in top.iter_rows(named=True):
            if row["effect"] > 0:
                traits.setdefault(row[_CLUSTER], []).append(ClusterTrait(
                    feature=c, value=str(row["value"]), cluster=round(row["share"], 4),
                    overall=round(row["overall"], 4), effect=round(row["effect"], 3)))  # fmt: skip
    out = []
    for label in sorted(sizes, key=_order):
        mine = sorted(traits.get(label, ()), key=lambda t: -abs(t.effect))
        strong = [t for t in mine if abs(t.effect) >= MIN_EFFECT][:TOP_TRAITS]
        out.append(ClusterProfile(cluster=str(label), rows=int(sizes[label]),
                                  share=round(sizes[label] / rows, 4), traits=tuple(strong)))
    return tuple(out)


def _order(label: Any) -> tuple[int, Any]:
    return (0, label) if isinstance(label, int | float | np.integer) else (1, str(label))


def _round(value: float) -> float:
    if not math.isfinite(value):
        return value
    return float(f"{value:.4g}")
