"""File sources read as chunks: bounded batches, and a cursor that resumes a partly ingested
file after its last committed batch (no row read twice, none skipped)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from loopml.core.config import FileSource
from loopml.core.errors import EmptyDataError
from loopml.sources import read_chunks


def src(path: str, **kw: object) -> FileSource:
    return FileSource(name="s", path=path, **kw)  # type: ignore[arg-type]


def rows_of(chunks: list[Any]) -> list[tuple[str, int]]:
    """(file, line) of every row and rejected line, in the order read."""
    out = []
    for c in chunks:
        out += list(zip(c.frame["_source_file"].to_list(), c.frame["_source_row"].to_list(),
                        strict=True))  # fmt: skip
        if c.rejected is not None:
            out += list(zip(c.rejected["_source_file"].to_list(),
                            c.rejected["_source_row"].to_list(), strict=True))  # fmt: skip
    return out


def csv_text(n: int) -> str:
    body = []
    for i in range(n):
        if i % 50 == 7:
            body.append(f"{i},ragged\n")
        elif i % 13 == 0:
            body.append(f'{i},"a,\n{i}",x\n')  # a quoted newline: two physical lines
        else:
            body.append(f"{i},v{i},y\n")
    return "id,text,z\n" + "".join(body)


def write(tmp_path: Path, name: str, kind: str, n: int = 1000) -> None:
    if kind == "csv":
        (tmp_path / name).write_text(csv_text(n))
    elif kind == "gz":
        (tmp_path / name).write_bytes(gzip.compress(csv_text(n).encode()))
    elif kind == "ndjson":
        lines = [json.dumps({"id": i, "a": {"b": i}}) if i % 40 else "{broken" for i in range(n)]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    else:
        pl.DataFrame({"id": range(n)}).write_parquet(tmp_path / name)


@pytest.mark.parametrize(("name", "kind"), [("d.csv", "csv"), ("d.csv.gz", "gz"),
                                            ("d.ndjson", "ndjson"), ("d.parquet", "parquet")])
def test_resume_after_each_committed_chunk(tmp_path: Path, name: str, kind: str) -> None:
    """A crash after any chunk: reading again from its cursor yields exactly the rest."""
    write(tmp_path, name, kind)
    config = src(name, batch_rows=97)
    whole = list(read_chunks(config, base_dir=tmp_path))
    assert len(whole) > 5 and all(c.frame.height <= 97 for c in whole)
    expected = rows_of(whole)
    assert len(expected) == len(set(expected))
    for k in range(len(whole)):
        cursor = json.loads(json.dumps(whole[k].cursor))  # as stored in the catalog
        rest = list(read_chunks(config, base_dir=tmp_path, cursor=cursor))
        assert rows_of(whole[: k + 1]) + rows_of(rest) == expected, f"after chunk {k}"
    assert list(read_chunks(config, base_dir=tmp_path, cursor=whole[-1].cursor)) == []


def test_cursor_records_the_partial_file(tmp_path: Path) -> None:
    write(tmp_path, "d.csv", "csv")
    first = next(iter(read_chunks(src("d.csv", batch_rows=100), base_dir=tmp_path)))
    partial = first.cursor["partial"]
    assert partial["path"] == "d.csv" and len(partial["sha256"]) == 64
    assert partial["rows"] == 100  # rows + rejected lines so far
    assert first.cursor["files"] == {}


def test_glob_resumes_in_the_second_file(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    write(tmp_path, "d/1.csv", "csv", 300)
    write(tmp_path, "d/2.csv", "csv", 310)
    config = src("d/*.csv", batch_rows=100)
    whole = list(read_chunks(config, base_dir=tmp_path))
    middle = next(i for i, c in enumerate(whole) if c.files == ("d/2.csv",))
    rest = list(read_chunks(config, base_dir=tmp_path, cursor=whole[middle].cursor))
    assert rows_of(whole[: middle + 1]) + rows_of(rest) == rows_of(whole)
    assert set(whole[-1].cursor["files"]) == {"d/1.csv", "d/2.csv"}


def test_changed_file_is_read_again(tmp_path: Path) -> None:
    """The cursor keys on content: a file whose bytes changed is new."""
    (tmp_path / "a.csv").write_text("x\n1\n")
    done = list(read_chunks(src("a.csv"), base_dir=tmp_path))[-1].cursor
    assert list(read_chunks(src("a.csv"), base_dir=tmp_path, cursor=done)) == []
    (tmp_path / "a.csv").write_text("x\n1\n2\n")
    again = list(read_chunks(src("a.csv"), base_dir=tmp_path, cursor=done))
    assert again[0].frame["x"].to_list() == ["1", "2"]


def test_partial_cursor_of_another_content_starts_over(tmp_path: Path) -> None:
    write(tmp_path, "d.csv", "csv")
    first = next(iter(read_chunks(src("d.csv", batch_rows=100), base_dir=tmp_path)))
    write(tmp_path, "d.csv", "csv", 500)  # replaced before the rest was ingested
    rest = list(read_chunks(src("d.csv", batch_rows=100), base_dir=tmp_path,
                            cursor=first.cursor))  # fmt: skip
    assert rest[0].frame["_source_row"][0] == 2


def test_sha256_once_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    calls: list[str] = []
    real = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest",
                        lambda fh, name: calls.append(fh.name) or real(fh, name))  # fmt: skip
    write(tmp_path, "d.csv", "csv")
    assert len(list(read_chunks(src("d.csv", batch_rows=50), base_dir=tmp_path))) > 5
    assert len(calls) == 1


def test_empty_file_among_others_is_marked_done(tmp_path: Path) -> None:
    """One empty file in a glob does not block the others; alone, it is an EmptyDataError."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("x\n1\n")
    (tmp_path / "d" / "b.csv").write_text("x\n")
    (tmp_path / "d" / "c.csv").write_text("")
    out = list(read_chunks(src("d/*.csv"), base_dir=tmp_path))
    assert sum(c.frame.height for c in out) == 1
    assert set(out[-1].cursor["files"]) == {"d/a.csv", "d/b.csv", "d/c.csv"}
    with pytest.raises(EmptyDataError):
        list(read_chunks(src("d/b.csv"), base_dir=tmp_path))


PEAK = """
import resource, sys
from loopml.core.config import FileSource
from loopml.sources import read_chunks
rows = 0
for chunk in read_chunks(FileSource(name="s", path=sys.argv[1], batch_rows=50_000),
                         base_dir=sys.argv[2]):
    rows += chunk.frame.height
print(rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """Reading a 4x larger file in batches costs about the same peak memory."""
    block = "".join(f"{i},name {i},{i * 0.5},2024-01-{i % 28 + 1:02d},\"a, b\"\n"
                    for i in range(10_000))  # fmt: skip
    header = "id,name,value,day,note\n"
    (tmp_path / "small.csv").write_text(header + block * 100)  # 1M rows
    (tmp_path / "big.csv").write_text(header + block * 400)  # 4M rows, ~200 MB more
    peaks = {}
    for name in ("small.csv", "big.csv"):
        out = subprocess.run([sys.executable, "-c", PEAK, name, str(tmp_path)],
                             capture_output=True, text=True, check=True, timeout=600)  # fmt: skip
        rows, peak = map(int, out.stdout.split())
        assert rows == 1_000_000 * (4 if name == "big.csv" else 1)
        peaks[name] = peak
    growth = (tmp_path / "big.csv").stat().st_size - (tmp_path / "small.csv").stat().st_size
    assert peaks["big.csv"] - peaks["small.csv"] < growth / 2**20 / 4, peaks


def test_lone_empty_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(EmptyDataError, match="0 bytes"):
        list(read_chunks(src("e.csv"), base_dir=tmp_path))


def test_stopping_early_ends_the_read_ahead(tmp_path: Path) -> None:
    """An ingest that stops after one chunk leaves no reading thread behind."""
    import threading

    write(tmp_path, "d.csv", "csv", 2000)
    chunks = read_chunks(src("d.csv", batch_rows=50), base_dir=tmp_path)
    assert next(iter(chunks)).frame.height <= 50
    chunks.close()  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name == "loopml-read-ahead"]


def test_an_error_in_a_later_batch_reaches_the_reader(tmp_path: Path) -> None:
    """A compressed file cut short is read up to the damage, then one SourceError."""
    from loopml.core.errors import SourceError

    data = gzip.compress(csv_text(200_000).encode())
    (tmp_path / "cut.csv.gz").write_bytes(data[: len(data) * 3 // 4])
    got = []
    with pytest.raises(SourceError, match="cut.csv.gz"):
        for chunk in read_chunks(src("cut.csv.gz", batch_rows=20_000), base_dir=tmp_path):
            got.append(chunk)
    assert got and all(c.cursor.get("partial") for c in got)
