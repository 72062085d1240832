"""NDJSON and JSON files: nested objects flattened, arrays kept or exploded, bad lines set aside."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from loopml.core.config import FileSource
from loopml.core.errors import SourceError
from loopml.sources import read_chunks, read_source

RECORDS = [
    {"id": 1, "user": {"name": "Ann", "geo": {"lat": 1.5}}, "tags": ["a", "b"]},
    {"id": 2, "user": {"name": "Bob", "geo": {"lat": None}}, "tags": []},
]


def src(path: str, **kw: object) -> FileSource:
    return FileSource(name="s", path=path, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["r.ndjson", "r.json", "r.jsonl.gz"])
def test_structs_flatten_to_dotted_columns(tmp_path: Path, name: str) -> None:
    """NDJSON and a JSON array give the same columns: a.b for nested objects, lists kept."""
    if name == "r.json":
        (tmp_path / name).write_text(json.dumps(RECORDS, indent=2))
    else:
        text = "\n".join(json.dumps(r) for r in RECORDS) + "\n"
        data = gzip.compress(text.encode()) if name.endswith(".gz") else text.encode()
        (tmp_path / name).write_bytes(data)
    frame = read_source(src(name), base_dir=tmp_path).frame
    assert [c for c in frame.columns if not c.startswith("_")] == [
        "id", "user.name", "user.geo.lat", "tags"]
    assert frame["user.geo.lat"].to_list() == [1.5, None]
    assert frame["tags"].to_list() == [["a", "b"], []]
    assert frame["_source_row"].to_list() == [1, 2]


def test_arrays_explode_one_row_per_element(tmp_path: Path) -> None:
    rows = [{"id": 1, "items": [{"sku": "x", "n": 2}, {"sku": "y", "n": 1}]},
            {"id": 2, "items": []}]  # fmt: skip
    (tmp_path / "o.ndjson").write_text("\n".join(json.dumps(r) for r in rows))
    frame = read_source(src("o.ndjson", arrays="explode"), base_dir=tmp_path).frame
    assert frame.select("id", "items.sku", "items.n").rows() == [
        (1, "x", 2), (1, "y", 1), (2, None, None)]
    assert frame["_source_row"].to_list() == [1, 1, 2]  # each element keeps its line


def test_bad_ndjson_lines_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "b.ndjson").write_text('{"a": 1}\n{"a": \n\n[1, 2]\n{"a": 2}\n')
    parts = list(read_chunks(src("b.ndjson"), base_dir=tmp_path))
    frame, rejected = parts[0].frame, parts[0].rejected
    assert frame["a"].to_list() == [1, 2] and frame["_source_row"].to_list() == [1, 5]
    assert rejected is not None
    assert rejected["_source_row"].to_list() == [2, 4]
    assert rejected["_raw"].to_list() == ['{"a": ', "[1, 2]"]
    assert "not valid JSON" in rejected["_reasons"][0]
    assert "not an object" in rejected["_reasons"][1]


def test_mixed_value_types_become_text(tmp_path: Path) -> None:
    (tmp_path / "m.ndjson").write_text('{"x": 1}\n{"x": "a"}\n')
    assert read_source(src("m.ndjson"), base_dir=tmp_path).frame["x"].to_list() == ["1", "a"]


def test_broken_json_array_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text('[{"a": 1},')
    with pytest.raises(SourceError, match="not valid JSON"):
        read_source(src("b.json"), base_dir=tmp_path)
    (tmp_path / "n.json").write_text("[1, 2]")
    with pytest.raises(SourceError, match="not of objects"):
        read_source(src("n.json"), base_dir=tmp_path)
