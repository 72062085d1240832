"""Model versions and aliases inside one catalog session: lookups with helpful errors, and
claiming the next version number."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loopml.core.records import ModelVersion
from loopml.registry import _files
from loopml.registry._db import floats
from loopml.registry._refs import LATEST, unknown
from loopml.registry._rows import event_row, from_row
from loopml.registry._tables import AliasRow, ModelFileRow, ModelVersionRow


def model_names(session: Session) -> list[str]:
    return list(session.scalars(sa.select(ModelVersionRow.name).distinct().order_by("name")))


def next_version(session: Session, name: str) -> int:
    latest = session.scalar(
        sa.select(sa.func.max(ModelVersionRow.version)).where(ModelVersionRow.name == name)
    )
    return (latest or 0) + 1


def version_row(session: Session, name: str, ref: int | str) -> ModelVersionRow:
    """The row of ``name`` at a version number or alias, or a ``RegistryError`` that lists the
    valid choices and the closest one."""
    versions = list(
        session.scalars(
            sa.select(ModelVersionRow)
            .where(ModelVersionRow.name == name)
            .order_by(ModelVersionRow.version)
        )
    )
    if not versions:
        raise unknown(
            "model",
            name,
            model_names(session),
            hint="Check the spelling, or register the model first (Catalog.register_model).",
            empty="the catalog holds no models yet",
        )
    if isinstance(ref, str) and ref.isdigit():
        ref = int(ref)
    if isinstance(ref, int):
        for row in versions:
            if row.version == ref:
                return row
        raise unknown(
            f"version of model {name!r}",
            str(ref),
            [str(r.version) for r in versions],
            hint=f"Versions of {name!r} run from 1 to {versions[-1].version}.",
        )
    alias = session.get(AliasRow, (name, ref))
    if alias is not None:
        return next(r for r in versions if r.version == alias.version)
    if ref == LATEST:
        return versions[-1]
    raise unknown(
        f"alias of model {name!r}",
        ref,
        aliases_of(session, [name]).get(name, []),
        hint=f"Point the alias at a version with Catalog.set_alias({name!r}, {ref!r}, VERSION), "
        f"or use a version number ({name}@{versions[-1].version}) or '{name}@{LATEST}'.",
        empty="it has no aliases yet",
    )


def aliases_of(session: Session, names: Iterable[str] | None) -> dict[str, list[str]]:
    """Alias names by model name (all models when ``names`` is None)."""
    query = sa.select(AliasRow).order_by(AliasRow.name, AliasRow.alias)
    if names is not None:
        query = query.where(AliasRow.name.in_(list(names)))
    found: dict[str, list[str]] = defaultdict(list)
    for row in session.scalars(query):
        found[row.name].append(row.alias)
    return found


def version_aliases(session: Session, rows: Sequence[ModelVersionRow]) -> list[tuple[str, ...]]:
    """The aliases pointing at each of ``rows``."""
    query = sa.select(AliasRow).where(AliasRow.name.in_({r.name for r in rows}))
    pointing: dict[tuple[str, int], list[str]] = defaultdict(list)
    for alias in session.scalars(query.order_by(AliasRow.alias)):
        pointing[(alias.name, alias.version)].append(alias.alias)
    return [tuple(pointing[(r.name, r.version)]) for r in rows]


def files_of(session: Session, name: str, version: int) -> dict[str, tuple[str, int]]:
    rows = session.scalars(
        sa.select(ModelFileRow).where(ModelFileRow.name == name, ModelFileRow.version == version)
    )
    return {r.path: (r.sha256, r.size) for r in rows}


def to_record(row: ModelVersionRow, aliases: tuple[str, ...], root: Path) -> ModelVersion:
    metrics, uri = floats(row.metrics), str(root / row.path)
    return from_row(ModelVersion, row, metrics=metrics, artifact_uri=uri, aliases=aliases)


def insert_version(
    session: Session,
    root: Path,
    staging: Path,
    files: dict[str, tuple[str, int]],
    row: ModelVersionRow,
) -> ModelVersion:
    """Give ``row`` its model's next version number, record it with its files and move
    ``staging`` to its folder.

    Another process may claim the same number first; the flush then fails with an integrity
    error and the caller tries again with a fresh row.
    """
    row.version = next_version(session, row.name)
    row.path = f"models/{row.name}/{row.version}"
    session.add(row)
    session.flush()  # claims the number before the folder takes its place
    session.add_all(
        ModelFileRow(name=row.name, version=row.version, path=p, sha256=h, size=n)
        for p, (h, n) in files.items()
    )
    payload = {"version": row.version, "run_id": row.run_id, "metric": row.metric}
    session.add(event_row("model_registered", row.name, payload | {"score": row.score}))
    session.flush()
    _files.place(staging, root / row.path)
    return to_record(row, (), root)
