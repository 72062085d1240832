"""``loopml check``: the gate a CI job runs after ``loopml run``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from loopml.core.errors import LoopError, RegistryError
from loopml.core.records import CheckItem, CheckReport

if TYPE_CHECKING:
    from loopml.pipeline._context import Context


def check(ctx: Context) -> CheckReport:
    """The newest version of the project's model against the champion on the evidence of its
    recorded decision (worse on any evidence set fails), and its metrics against
    ``loop.floors`` (below a floor fails)."""
    from loopml.evaluate import greater_is_better

    name = ctx.model_name
    try:
        newest = ctx.catalog.model_version(name, "latest")
    except RegistryError as exc:
        raise LoopError(f"Model {name!r} has no versions to check.",
                        hint="Run 'loopml run' first.") from exc
    items: list[CheckItem] = []
    decision = _decision_of(ctx, newest.ref)
    champion = None if decision is None else decision.get("champion_version")
    for e in [] if decision is None else decision.get("evidence", []):
        c = e["comparison"]
        diff = _float(c.get("difference"))
        items.append(CheckItem(
            name=f"{e['name']} vs champion v{champion}", value=diff, threshold=0.0,
            passed=diff is not None and diff >= 0,
            detail=(f"{c['metric']} {_num(c.get('challenger'))} vs {_num(c.get('champion'))} "
                    f"on {c['rows']:,} rows, {c['confidence']:.0%} interval "
                    f"[{_num(c.get('low'))}, {_num(c.get('high'))}]"),
        ))
    for metric, floor in sorted(ctx.config.loop.floors.items()):
        value = newest.metrics.get(metric)
        if value is None:
            items.append(CheckItem(name=f"floor {metric}", value=None, threshold=floor,
                                   passed=False, detail=f"v{newest.version} has no {metric}"))
            continue
        sign = 1.0 if greater_is_better(metric) else -1.0
        items.append(CheckItem(
            name=f"floor {metric}", value=value, threshold=floor,
            passed=sign * (value - floor) >= 0,
            detail=f"test {metric} of v{newest.version} "
            f"({'at least' if sign > 0 else 'at most'} {floor:g} required)",
        ))
    return CheckReport(model=name, version=newest.version, champion_version=champion,
                       items=tuple(items))


def _decision_of(ctx: Context, ref: str) -> dict[str, Any] | None:
    events = ctx.catalog.events(subject=ref, kind="decision", limit=1)
    return events[0]["payload"] if events else None


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _num(v: Any) -> str:
    f = _float(v)
    return "-" if f is None else f"{f:.4f}"
