"""The model report's cluster profile: each cluster's size and what sets it apart."""

from __future__ import annotations

from typing import Any

from loopml.core.records import ClusterTrait, Evaluation
from loopml.reports._figures import heatmap
from loopml.reports._page import Page, num, pct

MAX_HEATMAP_FEATURES = 15


def cluster_section(page: Page, evaluation: Evaluation) -> dict[str, Any] | None:
    """The table of clusters (rows, share, traits) and a heatmap of the traits' effects, or
    None when the evaluation has no cluster profile."""
    profiles = evaluation.cluster_profiles
    if not profiles:
        return None
    rows = [
        {"cluster": p.cluster, "rows": num(p.rows), "share": pct(p.share),
         "traits": [trait_text(t) for t in p.traits]}
        for p in profiles
    ]  # fmt: skip
    return {"rows": rows, "total": num(sum(p.rows for p in profiles)),
            "plot": _effects(page, evaluation)}  # fmt: skip


def trait_text(t: ClusterTrait) -> str:
    """A trait as a user reads it.

    >>> trait_text(ClusterTrait(feature="mass", value="", cluster=5037.0, overall=4100.0,
    ...                         effect=1.205))
    'mass: mean 5,037 vs 4,100 overall (+1.2 sd)'
    >>> trait_text(ClusterTrait(feature="island", value="Biscoe", cluster=1.0, overall=0.58,
    ...                         effect=0.856))
    'island = Biscoe: 100.0% vs 58.0% overall (+0.86 sd)'
    """
    effect = f"{t.effect:+.2g} sd"
    if t.value:
        return f"{t.feature} = {t.value}: {pct(t.cluster)} vs {pct(t.overall)} overall ({effect})"
    return f"{t.feature}: mean {num(t.cluster)} vs {num(t.overall)} overall ({effect})"


def _effects(page: Page, evaluation: Evaluation) -> Any:
    profiles = evaluation.cluster_profiles
    strength: dict[str, float] = {}
    for p in profiles:
        for t in p.traits:
            key = _key(t)
            strength[key] = max(strength.get(key, 0.0), abs(t.effect))
    features = sorted(strength, key=lambda k: -strength[k])[:MAX_HEATMAP_FEATURES]
    if not features:
        return None
    cells = [{_key(t): t.effect for t in p.traits} for p in profiles]
    z = [[c.get(f, 0.0) for f in features] for c in cells]
    text = [[f"{v:+.1f}" if f in c else "" for f, v in zip(features, row)]
            for c, row in zip(cells, z)]  # fmt: skip
    top = max(abs(v) for row in z for v in row) or 1.0
    fig = heatmap(z, features, [f"cluster {p.cluster}" for p in profiles],
                  title="What sets each cluster apart (difference from all rows, in sd)",
                  colorscale="RdBu_r", zmin=-top, zmax=top, text=text)  # fmt: skip
    return page.plot(fig)


def _key(t: ClusterTrait) -> str:
    return f"{t.feature} = {t.value}" if t.value else t.feature
