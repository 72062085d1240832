"""The catalog: runs, metrics, model versions with aliases, artifacts, events and lineage.

One SQL database (an SQLite file under ``.loopml/`` by default, PostgreSQL for a team) whose
schema Alembic keeps up to date; artifact files live in a local folder with their sha256 in
the catalog, checked before anything is loaded.

>>> parse_model_ref("flights@2")
('flights', 2)

``Catalog`` loads SQLAlchemy on first use, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.registry._refs import parse_model_ref

if TYPE_CHECKING:
    from loopml.registry._catalog import Catalog

__all__ = ["Catalog", "parse_model_ref"]


def __getattr__(name: str) -> Any:
    if name == "Catalog":
        from loopml.registry._catalog import Catalog

        return Catalog
    raise AttributeError(f"module 'loopml.registry' has no attribute {name!r}")
