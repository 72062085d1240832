"""Rollback: the champion before the current one, from the alias history in the catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.core.errors import LoopError
from loopml.pipeline._alerts import alert
from loopml.pipeline._loop import _version

if TYPE_CHECKING:
    from loopml.core.records import ModelVersion
    from loopml.pipeline._context import Context


def rollback(ctx: Context, name: str | None = None) -> tuple[ModelVersion, int]:
    """Point the champion alias back at the champion before the current one (from the alias
    history in the catalog); returns the restored version and the one it replaced."""
    name = name or ctx.model_name
    current = _version(ctx, name, "champion")
    if current is None:
        raise LoopError(f"Model {name!r} has no champion to roll back.",
                        hint="Run 'loopml run' first.")
    history = champion_history(ctx, name)
    if len(history) < 2:
        raise LoopError(
            f"{name}@{current.version} is the only champion {name!r} has had; there is no "
            "earlier one to restore.",
            hint="Promote another version by hand with 'loopml promote NAME VERSION'.",
        )
    previous = history[-2]
    ctx.catalog.set_alias(name, "champion", previous)
    payload = {"from": current.version, "to": previous, "by": "user"}
    ctx.catalog.log_event("rollback", f"{name}@{previous}", payload)
    alert(ctx, "rollback", f"{name}@{previous}", payload)
    return ctx.catalog.model_version(name, previous), current.version


def champion_history(ctx: Context, name: str) -> list[int]:
    """The champions of ``name`` in order, with rolled-back ones taken off: the last entry is
    the current champion, the one before it what a rollback restores."""
    events = ctx.catalog.events(subject=name, kind="alias_set", limit=100_000)
    events += [e for e in ctx.catalog.events(kind="rollback", limit=100_000)
               if e["subject"].split("@")[0] == name]
    stack: list[int] = []
    for e in sorted(events, key=lambda e: e["id"]):
        payload = e["payload"]
        if e["kind"] == "alias_set" and payload.get("alias") == "champion":
            if not stack or stack[-1] != payload["version"]:
                stack.append(int(payload["version"]))
        elif e["kind"] == "rollback" and len(stack) >= 3 and stack[-1] == payload["to"]:
            del stack[-3:-1]  # [..., to, from, to] -> [..., to]
    return stack
