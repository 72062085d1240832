"""File readers never lose a row: every record of a file is either yielded or rejected, once,
with its line number; well-formed CSV comes back exactly; a crash between chunks resumes
without a gap or a repeat."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.core.config import FileSource
from loopml.core.errors import LoopmlError
from loopml.sources import read_chunks

NA = FileSource(name="s", path="x").na_values
cells = st.text(alphabet=st.sampled_from('ab,;"\n\r é€ \t|1.-'), max_size=8)


def read_all(folder: str, config: FileSource, cursor: dict | None = None) -> list:
    return list(read_chunks(config, base_dir=folder, cursor=cursor))


def parity_records(data: bytes) -> list[tuple[int, bytes]]:
    """An independent oracle: (first line, bytes) of each non-blank record, a newline inside
    double quotes not ending one."""
    out, start, line, first, inside = [], 0, 1, 1, False
    for i, byte in enumerate(data):
        if byte == ord('"'):
            inside = not inside
        elif byte == ord("\n"):
            if not inside:
                out.append((first, data[start:i]))
                start, first = i + 1, line + 1
            line += 1
    if start < len(data):
        out.append((first, data[start:]))
    return [(n, r) for n, r in out if r not in (b"", b"\r")]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 4),
    rows=st.lists(st.lists(cells, min_size=4, max_size=4), max_size=25),
    batch_rows=st.sampled_from([1, 2, 3, 7, 10_000]),  # 10_000: the fast path
    crlf=st.booleans(),
)
def test_well_formed_csv_round_trips(width: int, rows: list[list[str]], batch_rows: int,
                                     crlf: bool) -> None:  # fmt: skip
    """Whatever the cells hold (delimiters, quotes, newlines, non-ASCII), a file written by a
    CSV writer is read back cell for cell, each row with the line it starts on."""
    header = [f"col{i}" for i in range(width)]
    # with "\n" line ends a writer leaves a lone "\r" unquoted, which no reader can tell
    # from a CRLF line end
    rows = [[c if crlf else c.replace("\r", "") for c in r[:width]] for r in rows]
    rows = [r for r in rows if r != [""] * width or width > 1]  # an empty line is no row
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(header)
    lines, line = [], 2
    for r in rows:
        start = buf.tell()
        writer.writerow(r)
        lines.append(line)
        line += buf.getvalue()[start:].count("\n")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "d.csv").write_bytes(buf.getvalue().encode())
        config = FileSource(name="s", path="d.csv", delimiter=",", header=True,
                            batch_rows=batch_rows)  # fmt: skip
        try:
            chunks = read_all(tmp, config)
        except LoopmlError:
            assert not rows  # only a header: EmptyDataError
            return
    assert all(c.rejected is None or c.rejected.height == 0 for c in chunks)
    got = [row for c in chunks for row in c.frame.select(header).rows()]
    assert got == [tuple(None if v in NA else v for v in r) for r in rows]
    assert [n for c in chunks for n in c.frame["_source_row"].to_list()] == lines


@settings(max_examples=150, deadline=None)
@given(
    counts=st.lists(st.integers(1, 6), min_size=1, max_size=30),
    blank=st.lists(st.booleans(), max_size=30),
    batch_rows=st.sampled_from([1, 2, 5, 9, 10_000]),
)
def test_ragged_lines_rejected_none_lost(counts: list[int], blank: list[bool],
                                         batch_rows: int) -> None:  # fmt: skip
    """Lines with the header's field count are rows, the others rejected, with line numbers;
    blank lines are neither."""
    text, expected_rows, expected_rejected, line = "a,b,c\n", [], [], 2
    for i, n in enumerate(counts):
        if i < len(blank) and blank[i]:
            text += "\n"
            line += 1
        text += ",".join(f"v{i}_{k}" for k in range(n)) + "\n"
        (expected_rows if n == 3 else expected_rejected).append(line)
        line += 1
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "r.csv").write_text(text)
        chunks = read_all(tmp, FileSource(name="s", path="r.csv", batch_rows=batch_rows))
    assert [n for c in chunks for n in c.frame["_source_row"].to_list()] == expected_rows
    rejected = [n for c in chunks if c.rejected is not None
                for n in c.rejected["_source_row"].to_list()]  # fmt: skip
    assert sorted(rejected) == expected_rejected


@settings(max_examples=200, deadline=None)
@given(
    head=st.sampled_from([b"a,b\n", b"a,b,c\n", b'"a","b"\n']),
    body=st.lists(st.one_of(
        st.binary(max_size=30),
        st.sampled_from([b"1,2\n", b"1,2,3\n", b'"x,\ny",2\n', b"\xff\xfe,1\n", b"\n",
                         b"\r\n", b'"unclosed,1\n', b"\x00,\x00\n", "é,€\n".encode()]),
    ), max_size=20).map(b"".join),
    batch_rows=st.sampled_from([1, 2, 3, 6, 10_000]),
    crash_after=st.integers(0, 10),
)  # fmt: skip
def test_any_bytes_rows_yielded_plus_rejected(head: bytes, body: bytes, batch_rows: int,
                                              crash_after: int) -> None:  # fmt: skip
    """Any bytes under a header: records in the file == rows yielded + rows rejected, each
    once; resuming from any committed chunk's cursor gives the same rows."""
    data = head + body
    config = FileSource(name="s", path="g.csv", delimiter=",", header=True, encoding="utf-8",
                        batch_rows=batch_rows)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "g.csv").write_bytes(data)
        try:
            chunks = read_all(tmp, config)
        except LoopmlError:
            assert len(parity_records(data)) <= 1 or len(data) > 10**6  # header only
            return
        seen = [n for c in chunks for n in c.frame["_source_row"].to_list()]
        seen += [n for c in chunks if c.rejected is not None
                 for n in c.rejected["_source_row"].to_list()]  # fmt: skip
        records = parity_records(data)[1:]  # the first is the header
        assert sorted(seen) == [n for n, _ in records]
        k = min(crash_after, len(chunks) - 1)
        rest = read_all(tmp, config, cursor=chunks[k].cursor)

    def key(cs: list) -> list[tuple]:
        out = []
        for c in cs:
            out += [("row", n) for n in c.frame["_source_row"].to_list()]
            if c.rejected is not None:
                out += [("bad", n) for n in c.rejected["_source_row"].to_list()]
        return out

    assert key(chunks[: k + 1]) + key(rest) == key(chunks)
