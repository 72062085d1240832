"""Reading file sources: formats, globs, provenance and the errors a new user meets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from loopml.core.config import FileSource
from loopml.core.errors import EmptyDataError, SourceError
from loopml.sources import read_source


def src(path: str, **kw: object) -> FileSource:
    return FileSource(name="s", path=path, **kw)  # type: ignore[arg-type]


def test_csv_is_read_as_text_with_provenance(tmp_path: Path) -> None:
    """CSV values stay text; each row says which file and line it came from."""
    (tmp_path / "a.csv").write_text("id,score\n007,1.50\n008,NA\n")
    batch = read_source(src("a.csv"), base_dir=tmp_path)
    assert batch.frame["id"].to_list() == ["007", "008"]  # leading zeros kept
    assert batch.frame["score"].to_list() == ["1.50", None]  # NA is missing
    assert batch.frame["_source_file"].to_list() == ["a.csv", "a.csv"]
    assert batch.frame["_source_row"].to_list() == [2, 3]  # line numbers: the header is line 1


def test_glob_reads_every_file_in_order(tmp_path: Path) -> None:
    """A glob reads all matching files, sorted, with columns unioned."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "1.csv").write_text("x\n1\n")
    (tmp_path / "d" / "2.csv").write_text("x,y\n2,b\n")
    batch = read_source(src("d/*.csv"), base_dir=tmp_path)
    assert batch.files == ("d/1.csv", "d/2.csv")
    assert batch.rows_per_file == (1, 1)
    assert batch.frame["x"].to_list() == ["1", "2"]
    assert batch.frame["y"].to_list() == [None, "b"]  # a column only one file has


def test_parquet_and_ndjson_keep_types(tmp_path: Path) -> None:
    """Typed formats keep their types."""
    frame = pl.DataFrame({"x": [1, 2], "y": [0.5, None]})
    frame.write_parquet(tmp_path / "a.parquet")
    frame.write_ndjson(tmp_path / "b.ndjson")
    for name in ("a.parquet", "b.ndjson"):
        out = read_source(src(name), base_dir=tmp_path).frame
        assert out["x"].dtype == pl.Int64 and out["y"].to_list() == [0.5, None]


def test_empty_file(tmp_path: Path) -> None:
    """An empty file is an EmptyDataError that names it."""
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(EmptyDataError) as info:
        read_source(src("e.csv"), base_dir=tmp_path)
    assert "e.csv" in info.value.message and "0 bytes" in info.value.message


def test_header_only_file(tmp_path: Path) -> None:
    """A file with a header and no rows is an EmptyDataError."""
    (tmp_path / "h.csv").write_text("a,b\n")
    with pytest.raises(EmptyDataError):
        read_source(src("h.csv"), base_dir=tmp_path)


def test_unreadable_file_permission(tmp_path: Path) -> None:
    """A file without read permission is a SourceError with a chmod hint."""
    f = tmp_path / "p.csv"
    f.write_text("a\n1\n")
    f.chmod(0)
    code = (
        "import sys, json\n"
        "from loopml.core.config import FileSource\n"
        "from loopml.core.errors import SourceError\n"
        "from loopml.sources import read_source\n"
        "try:\n"
        f"    read_source(FileSource(name='s', path='p.csv'), base_dir={str(tmp_path)!r})\n"
        "except SourceError as e:\n"
        "    print(json.dumps([type(e).__name__, e.message, e.hint]))\n"
    )
    cmd = [sys.executable, "-c", code]
    if os.geteuid() == 0:  # root reads anything; drop the capabilities that allow it
        drop = "-dac_override,-dac_read_search"
        cmd = ["setpriv", "--bounding-set", drop, "--inh-caps", drop, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    kind, message, hint = json.loads(out.stdout)
    assert kind == "SourceError" and "permission denied" in message
    assert "chmod" in hint


def test_unreadable_file_not_utf8(tmp_path: Path) -> None:
    """A file that is declared UTF-8 but is not is a SourceError saying how to convert it
    (undeclared, it is read as cp1252: tests/unit/sources/test_csv.py)."""
    (tmp_path / "l.csv").write_bytes("name\nJos\xe9\n".encode("latin-1"))
    with pytest.raises(SourceError) as info:
        read_source(src("l.csv", encoding="utf-8"), base_dir=tmp_path)
    assert "UTF-8" in (info.value.hint or "") and "line 2" in info.value.message


def test_corrupt_parquet(tmp_path: Path) -> None:
    """A file that is not the format its name says is a SourceError, not a crash."""
    (tmp_path / "x.parquet").write_bytes(b"this is not parquet at all")
    with pytest.raises(SourceError) as info:
        read_source(src("x.parquet"), base_dir=tmp_path)
    assert "x.parquet" in info.value.message


def test_missing_file_and_empty_glob(tmp_path: Path) -> None:
    """A path that matches nothing is a SourceError either way."""
    with pytest.raises(SourceError):
        read_source(src("nope.csv"), base_dir=tmp_path)
    with pytest.raises(SourceError) as info:
        read_source(src("*.parquet"), base_dir=tmp_path)
    assert "No files match" in info.value.message
