"""Alembic environment for the catalog.

The catalog runs it with the connection in ``config.attributes["connection"]`` (already inside
a locked transaction). For writing a new revision by hand, ``sqlalchemy.url`` works too::

    from alembic import command
    from loopml.registry._db import alembic_config
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", "sqlite:////tmp/scratch.db")
    command.upgrade(config, "head")
    command.revision(config, message="add deployments", autogenerate=True)

then set ``HEAD`` in ``loopml/registry/_db.py`` to the new revision id.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from loopml.registry._tables import Base, UTCDateTime


def _render_item(kind: str, obj: object, autogen_context: object) -> str | bool:
    """Write UTC timestamps as plain ``sa.DateTime`` so revisions do not import the package."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=sa.NullPool)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()


# Alembic executes this file; other importers (a doctest collector) find no context to run.
if getattr(context, "config", None) is not None:
    main()
