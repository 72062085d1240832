"""A small project for ingest tests: CSV files, a contract, and where each row ended up."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from loopml.core.contract import ColumnSpec, Contract

COLUMNS = (
    ColumnSpec(name="id", type="integer", nullable=False),
    ColumnSpec(name="amount", type="float", min=0, max=1000),
    ColumnSpec(name="label", type="string"),
)


def make_project(root: Path, *, source: dict[str, Any] | None = None,
                 columns: tuple[ColumnSpec, ...] = COLUMNS,
                 catalog_url: str | None = None) -> Path:
    """Write loopml.yaml (one file source 'orders' over data/*.csv) and its contract."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "name": "orders",
        "sources": [{"name": "orders", "path": "data/*.csv", **(source or {})}],
        "problem": {"source": "orders", "target": "label"},
    }
    if catalog_url:
        config["storage"] = {"catalog_url": catalog_url}
    (root / "loopml.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    set_contract(root, columns)
    return root


def set_contract(root: Path, columns: tuple[ColumnSpec, ...]) -> None:
    Contract(source="orders", columns=columns).save(root / "contracts" / "orders.yaml")


def write_csv(root: Path, name: str, rows: list[tuple[Any, ...]],
              header: str = "id,amount,label") -> None:
    lines = [header] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    (root / "data" / name).write_text("\n".join(lines) + "\n")


def placement(root: Path, source: str = "orders") -> dict[str, Counter]:
    """Each zone's (file, row) keys with how often each occurs."""
    from loopml.lake import Lake

    lake = Lake(root / ".loopml" / "lake")
    out: dict[str, Counter] = {}
    for zone in ("clean", "quarantine"):
        table = f"{zone}/{source}"
        if not lake.exists(table):
            out[zone] = Counter()
            continue
        frame = lake.read(table, columns=["_source_file", "_source_row"])
        out[zone] = Counter(zip(frame["_source_file"].to_list(), frame["_source_row"].to_list()))
    return out


def assert_each_row_once(root: Path, expected: set[tuple[str, int]]) -> dict[str, Counter]:
    """Every expected row is in exactly one of clean or quarantine, none twice, no others."""
    where = placement(root)
    clean, quarantine = where["clean"], where["quarantine"]
    assert all(n == 1 for n in clean.values()), [k for k, n in clean.items() if n > 1]
    assert all(n == 1 for n in quarantine.values()), [k for k, n in quarantine.items() if n > 1]
    assert not set(clean) & set(quarantine), set(clean) & set(quarantine)
    assert set(clean) | set(quarantine) == expected
    return where
