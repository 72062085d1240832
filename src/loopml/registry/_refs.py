"""Model references (``name@alias``, ``name@3``), the names the catalog accepts, and the
error for a name it does not know."""

from __future__ import annotations

import re
from collections.abc import Sequence

from loopml.core.errors import RegistryError, unknown_name

DEFAULT_ALIAS = "champion"
LATEST = "latest"  # resolves to the newest version; cannot be set as an alias
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,199}$")


def parse_model_ref(text: str) -> tuple[str, int | str]:
    """Split ``name@version`` or ``name@alias``; a bare name means its champion.

    >>> parse_model_ref("flights@champion")
    ('flights', 'champion')
    >>> parse_model_ref("flights@3")
    ('flights', 3)
    >>> parse_model_ref("flights")
    ('flights', 'champion')
    """
    name, sep, ref = text.strip().partition("@")
    if not name or (sep and not ref):
        raise RegistryError(
            f"Model reference {text!r} is not valid.",
            hint="Write NAME, NAME@ALIAS or NAME@VERSION, e.g. 'flights@champion' or 'flights@3'.",
        )
    check_name("model", name)
    if not sep:
        return name, DEFAULT_ALIAS
    if ref.isdigit():
        return name, int(ref)
    if ref != LATEST:
        check_name("alias", ref)
    return name, ref


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it may name a model or an alias (it becomes a folder name)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(
            f"{kind.capitalize()} name {name!r} is not allowed.",
            hint="Use up to 200 letters, digits, '_', '-' and '.', starting with a letter.",
        )
    return name


def unknown(
    kind: str, name: str, choices: Sequence[str], *, hint: str, empty: str = "there are none"
) -> RegistryError:
    """A ``RegistryError`` for an unknown name: the valid names and the closest, or why there
    are none."""
    if choices:
        return RegistryError(unknown_name(kind, name, choices), hint=hint)
    return RegistryError(f"Unknown {kind} {name!r}: {empty}.", hint=hint)
