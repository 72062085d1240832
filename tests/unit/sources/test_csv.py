"""CSV files: dialect, encoding and header detection, compression, ragged lines set aside."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import polars as pl
import pytest

from loopml.core.config import FileSource
from loopml.core.errors import EmptyDataError, SourceError
from loopml.sources import read_chunks, read_source


def src(path: str, **kw: object) -> FileSource:
    return FileSource(name="s", path=path, **kw)  # type: ignore[arg-type]


def chunks(tmp_path: Path, path: str, **kw: object) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every row and every rejected line of a source, read chunk by chunk."""
    frames, rejected = [], []
    for chunk in read_chunks(src(path, **kw), base_dir=tmp_path):
        frames.append(chunk.frame)
        if chunk.rejected is not None:
            rejected.append(chunk.rejected)
    empty = pl.DataFrame(schema={"_source_row": pl.Int64, "_raw": pl.String,
                                 "_reasons": pl.String})  # fmt: skip
    return (pl.concat(frames, how="diagonal_relaxed"),
            pl.concat(rejected) if rejected else empty)  # fmt: skip


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_detected(tmp_path: Path, delimiter: str) -> None:
    """Each common delimiter is found from the file itself; commas in text do not fool it."""
    lines = ["name", "note", "n"], ["Ann", '"a, b, c"', "1"], ["Bob", "x", "2"]
    (tmp_path / "d.csv").write_text("\n".join(delimiter.join(cells) for cells in lines) + "\n")
    frame = read_source(src("d.csv"), base_dir=tmp_path).frame
    assert frame.columns[:3] == ["name", "note", "n"]
    assert frame["note"].to_list() == ["a, b, c", "x"]


def test_quotes_hold_delimiters_and_newlines(tmp_path: Path) -> None:
    """A quoted field keeps its delimiter, doubled quote and newline; the row's number is the
    line it starts on."""
    (tmp_path / "q.csv").write_text('id,text\n1,"a, ""b""\nc"\n2,d\n')
    frame = read_source(src("q.csv"), base_dir=tmp_path).frame
    assert frame["text"].to_list() == ['a, "b"\nc', "d"]
    assert frame["_source_row"].to_list() == [2, 4]


def test_quote_char_is_configurable(tmp_path: Path) -> None:
    (tmp_path / "q.csv").write_text("id,text\n1,'a,b'\n")
    frame = read_source(src("q.csv", quote_char="'"), base_dir=tmp_path).frame
    assert frame["text"].to_list() == ["a,b"]


def test_ragged_lines_are_rejected_with_line_numbers(tmp_path: Path) -> None:
    """Too many or too few fields: that line is rejected with its number, raw text and reason;
    the other lines are read."""
    (tmp_path / "r.csv").write_text("a,b,c,d\n1,2,3,4\n5,6,7\n8,9,10,11,12\n13,14,15,16\n")
    frame, rejected = chunks(tmp_path, "r.csv")
    assert frame["a"].to_list() == ["1", "13"]
    assert frame["_source_row"].to_list() == [2, 5]
    assert rejected["_source_row"].to_list() == [3, 4]
    assert rejected["_raw"].to_list() == ["5,6,7", "8,9,10,11,12"]
    assert rejected["_reasons"].to_list() == [
        "line 3 has 3 fields, the header has 4", "line 4 has 5 fields, the header has 4"]
    assert rejected["_source_file"].to_list() == ["r.csv", "r.csv"]


def test_read_source_refuses_ragged_lines_unless_asked(tmp_path: Path) -> None:
    """read_source (init, predict) names the first bad line, or hands them over."""
    (tmp_path / "r.csv").write_text("a,b\n1,2\n3\n")
    with pytest.raises(SourceError) as info:
        read_source(src("r.csv"), base_dir=tmp_path)
    assert "line 3 has 1 fields" in info.value.message
    rejected: list[pl.DataFrame] = []
    batch = read_source(src("r.csv"), base_dir=tmp_path, rejected=rejected)
    assert batch.frame.height == 1 and rejected[0]["_source_row"].to_list() == [3]


def test_bad_quoting_is_rejected_not_fatal(tmp_path: Path) -> None:
    """Text after a closing quote, or a quote never closed, is a rejected line."""
    (tmp_path / "q.csv").write_text('a,b\n1,"x"y\n2,z\n3,"open\n')
    frame, rejected = chunks(tmp_path, "q.csv")
    assert frame["a"].to_list() == ["2"]
    assert rejected["_source_row"].to_list() == [2, 4]


def test_blank_lines_are_not_rows(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("a,b\n\n1,2\n\r\n3,4\n\n")
    frame, rejected = chunks(tmp_path, "b.csv")
    assert frame["_source_row"].to_list() == [3, 5] and rejected.height == 0


def test_crlf_line_ends(tmp_path: Path) -> None:
    (tmp_path / "w.csv").write_bytes(b"a,b\r\n1,2\r\n3,4\r\n")
    frame = read_source(src("w.csv"), base_dir=tmp_path).frame
    assert frame["b"].to_list() == ["2", "4"]


def test_utf8_with_bom(tmp_path: Path) -> None:
    (tmp_path / "u.csv").write_bytes(b"\xef\xbb\xbfname,v\nJos\xc3\xa9,1\n")
    frame = read_source(src("u.csv"), base_dir=tmp_path).frame
    assert frame.columns[0] == "name" and frame["name"].to_list() == ["José"]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom(tmp_path: Path, codec: str) -> None:
    text = "name,v\nJosé,1\n日本,2\n"
    bom = {"utf-16-le": "\ufeff", "utf-16-be": "\ufeff"}.get(codec, "")
    (tmp_path / "u.csv").write_bytes((bom + text).encode(codec))
    frame = read_source(src("u.csv"), base_dir=tmp_path).frame
    assert frame["name"].to_list() == ["José", "日本"]


def test_cp1252_fallback_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A file that is not UTF-8 is read as cp1252 (the euro sign survives) with a warning."""
    (tmp_path / "c.csv").write_bytes("name,price\nJosé,5 €\n".encode("cp1252"))
    with caplog.at_level(logging.WARNING, logger="loopml.sources"):
        frame = read_source(src("c.csv"), base_dir=tmp_path).frame
    assert frame["name"].to_list() == ["José"] and frame["price"].to_list() == ["5 €"]
    assert "not UTF-8" in caplog.text and "cp1252" in caplog.text


def test_latin1_when_cp1252_cannot_decode(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_bytes(b"a\nx\x81y\n")
    assert read_source(src("l.csv"), base_dir=tmp_path).frame["a"].to_list() == ["x\x81y"]


def test_bad_utf8_line_is_rejected_others_read(tmp_path: Path) -> None:
    """A UTF-8 file with one bad byte after the sample: that line is rejected, the raw text
    keeps the byte visible, every other line is read."""
    good = "".join(f"{i},héllo\n" for i in range(120_000))  # > the 1 MB detection sample
    (tmp_path / "u.csv").write_bytes(b"id,t\n" + good.encode() + b"7,bad\xff\n8,ok\n")
    frame, rejected = chunks(tmp_path, "u.csv")
    assert frame.height == 120_001 and frame["t"][-1] == "ok"
    assert rejected["_source_row"].to_list() == [120_002]
    assert "\\xff" in rejected["_raw"][0] and "not valid utf-8" in rejected["_reasons"][0]


def test_declared_encoding(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_bytes("a\nJosé\n".encode("latin-1"))
    frame = read_source(src("l.csv", encoding="latin-1"), base_dir=tmp_path).frame
    assert frame["a"].to_list() == ["José"]
    with pytest.raises(SourceError, match="Unknown encoding"):
        read_source(src("l.csv", encoding="klingon"), base_dir=tmp_path)


@pytest.mark.parametrize(("text", "header"), [
    ("name,age\nAnn,31\n", True),
    ("Ann,31\nBob,42\n", False),
    ("2024-01-01,x\n2024-01-02,y\n", False),
    ("city,country\nParis,France\n", True),
])  # fmt: skip
def test_header_is_detected(tmp_path: Path, text: str, header: bool) -> None:
    (tmp_path / "h.csv").write_text(text)
    frame = read_source(src("h.csv"), base_dir=tmp_path).frame
    assert (frame.columns[0] != "column_1") is header
    assert frame.height == (1 if header else 2)


def test_header_can_be_forced(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("2023,2024\n1,2\n")
    assert read_source(src("h.csv", header=True), base_dir=tmp_path).frame.columns[:2] == [
        "2023", "2024"]
    frame = read_source(src("h.csv", header=False), base_dir=tmp_path).frame
    assert frame["_source_row"].to_list() == [1, 2]


def test_duplicate_and_empty_header_names(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("a,a,\nx,y,z\n")
    assert read_source(src("h.csv"), base_dir=tmp_path).frame.columns[:3] == [
        "a", "a_2", "column_3"]


def test_gzip_and_zstd(tmp_path: Path) -> None:
    """Compressed files are streamed and read like plain ones."""
    import pyarrow as pa

    data = b"a;b\n1;2\n3;4\n"
    (tmp_path / "g.csv.gz").write_bytes(gzip.compress(data))
    with pa.output_stream(str(tmp_path / "z.csv.zst"), compression="zstd") as out:
        out.write(data)
    for name in ("g.csv.gz", "z.csv.zst"):
        frame = read_source(src(name), base_dir=tmp_path).frame
        assert frame["b"].to_list() == ["2", "4"] and frame["_source_file"][0] == name


def test_huge_field(tmp_path: Path) -> None:
    """A 10 MB field is read whole."""
    (tmp_path / "h.csv").write_text("a,b\n1," + "x" * 10_000_000 + '\n2,"' + "y" * 10 + '"\n')
    frame = read_source(src("h.csv"), base_dir=tmp_path).frame
    assert frame["b"].str.len_chars().to_list() == [10_000_000, 10]


def test_header_only_and_blank_files(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("a,b\n")
    (tmp_path / "w.csv").write_text("\n\n\n")
    for name in ("h.csv", "w.csv"):
        with pytest.raises(EmptyDataError):
            list(read_chunks(src(name), base_dir=tmp_path))


def test_binary_garbage_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "g.csv").write_bytes(bytes(range(256)) * 50)
    with pytest.raises((SourceError, EmptyDataError)):
        read_source(src("g.csv"), base_dir=tmp_path)


def test_wide_files_read_in_batches(tmp_path: Path) -> None:
    """batch_rows bounds each chunk; together they hold every row once, in order."""
    lines = "".join(f"{i},{'q' if i % 7 else chr(34) + 'x,' + chr(10) + 'y' + chr(34)}\n"
                    for i in range(1000))  # fmt: skip
    (tmp_path / "b.csv").write_text("n,t\n" + lines)
    parts = list(read_chunks(src("b.csv", batch_rows=128), base_dir=tmp_path))
    assert all(p.frame.height <= 128 for p in parts) and len(parts) >= 8
    frame = pl.concat([p.frame for p in parts])
    assert frame["n"].to_list() == [str(i) for i in range(1000)]
    assert frame.filter(pl.col("n") == "7")["t"].to_list() == ["x,\ny"]


@pytest.mark.parametrize("bad", [",,", '"', "\n", "§"])
def test_delimiter_must_be_one_ascii_character(bad: str) -> None:
    """A delimiter the reader cannot split on is refused when the config is read."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        src("a.csv", delimiter=bad)
