"""The data contract record and its YAML form."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core.contract import ColumnSpec, Contract
from loopml.core.errors import SchemaError


def contract() -> Contract:
    return Contract(
        source="shop",
        columns=(
            ColumnSpec(name="age", type="integer", nullable=False, min=0, max=1000),
            ColumnSpec(name="plan", type="category", allowed=("basic", "pro")),
            ColumnSpec(name="signup", type="datetime"),
        ),
    )


def test_yaml_round_trip(tmp_path: Path) -> None:
    """A saved contract loads back equal, with the same fingerprint."""
    c = contract()
    again = Contract.load(c.save(tmp_path / "c.yaml"))
    assert again == c
    assert again.fingerprint() == c.fingerprint()


def test_fingerprint_changes_with_content() -> None:
    """Changing any expectation changes the fingerprint."""
    c = contract()
    changed = c.with_column(ColumnSpec(name="age", type="integer", nullable=True))
    assert changed.fingerprint() != c.fingerprint()


def test_unknown_type_is_rejected() -> None:
    """A column type outside the list is a SchemaError with the valid types."""
    with pytest.raises(SchemaError) as info:
        ColumnSpec(name="x", type="decimal")  # type: ignore[arg-type]
    assert "integer" in (info.value.hint or "")


def test_unknown_column_suggests_close_match() -> None:
    """Looking up a misspelt column suggests the right one."""
    with pytest.raises(SchemaError) as info:
        contract().column("agee")
    assert "Did you mean 'age'" in info.value.message


def test_unknown_keys_in_yaml_are_rejected() -> None:
    """A column entry with an unknown key is a SchemaError naming it."""
    text = "source: s\ncolumns:\n- {name: a, type: integer, maximum: 3}\n"
    with pytest.raises(SchemaError) as info:
        Contract.from_yaml(text)
    assert "maximum" in info.value.message
