"""CSV files read in batches, ragged lines rejected with their line number.

The common batch is checked cheaply (``_fast_batch``: delimiter and newline counts) and parsed
by Polars. Otherwise the bytes are split into records by NumPy (a newline or delimiter inside
quotes does not count), so that a line with the wrong number of fields, or bytes the file's
encoding cannot decode, is set aside with its physical line number and raw text while Polars
parses the rest as text. A record that Polars and the splitter disagree on (odd quoting) is
parsed by the standard library.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from loopml.core.errors import SourceError
from loopml.sources._dialect import Dialect, open_stream, split_line

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from loopml.core.config import FileSource

MAX_RECORD_BYTES = 1 << 30  # one record (a line, or several inside quotes) above this: refused


@dataclass(frozen=True, slots=True)
class Batch:
    frame: pl.DataFrame  # the columns (text) and _source_row (physical line number)
    rejected: pl.DataFrame | None  # _source_row, _raw, _reasons
    records: int  # rows this batch consumed: parsed + rejected
    offset: int  # stream bytes consumed after this batch
    lines: int  # physical lines consumed after this batch
    columns: tuple[str, ...]
    resume: dict[str, Any] = field(default_factory=dict)  # where the next batch starts


# ---- splitting bytes into records --------------------------------------------------------------


@dataclass(slots=True)
class _Records:
    starts: np.ndarray  # offset of each complete record
    ends: np.ndarray  # offset of its newline (or the end of the data)
    fields: np.ndarray  # number of fields
    lines: np.ndarray  # physical line number of its first line (from 1 in the buffer)


def split_records(buf: bytes, delim: int, quote: int | None, *, final: bool) -> _Records:
    """Complete records of ``buf`` (which starts at a record boundary)."""
    import numpy as np

    arr = np.frombuffer(buf, dtype=np.uint8)
    is_nl = arr == 10
    if quote is not None and buf.find(quote.to_bytes(1, "big")) >= 0:
        quotes = np.flatnonzero(arr == quote)  # an odd number of them before: inside quotes
        nl = np.flatnonzero(is_nl)
        nl = nl[(np.searchsorted(quotes, nl) & 1) == 0]
        delims = np.flatnonzero(arr == delim)
        delims = delims[(np.searchsorted(quotes, delims) & 1) == 0]
    else:
        nl = np.flatnonzero(is_nl)
        delims = np.flatnonzero(arr == delim)
    ends = nl
    if final and (len(nl) == 0 or nl[-1] != len(buf) - 1) and len(buf) > 0:
        ends = np.append(nl, len(buf))
    starts = np.empty(len(ends), dtype=np.int64)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    fields = np.searchsorted(delims, ends) - np.searchsorted(delims, starts) + 1
    if len(ends) and len(nl) != np.count_nonzero(is_nl):  # newlines inside quotes
        lines = np.searchsorted(np.flatnonzero(is_nl), starts) + 1
    else:
        lines = np.arange(1, len(ends) + 1, dtype=np.int64)
    return _Records(starts=starts, ends=ends, fields=fields, lines=lines)


# ---- the batch reader ----------------------------------------------------------------------


class _Utf16:
    """A UTF-16 stream as UTF-8 bytes, so that records split on ASCII bytes."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder("utf-16")(errors="replace")

    def read(self, size: int = -1) -> bytes:
        while True:
            data = bytes(self._raw.read(size if size > 0 else 1 << 20))
            out = self._decoder.decode(data, final=not data).encode("utf-8")
            if out or not data:
                return out

    def close(self) -> None:
        self._raw.close()


def csv_batches(
    path: Path,
    config: FileSource,
    *,
    dialect: Dialect,
    columns: tuple[str, ...] | None = None,
    offset: int = 0,
    lines: int = 0,
) -> Iterator[Batch]:
    """Batches of at most ``config.batch_rows`` records, from ``offset`` bytes into the
    (decompressed, UTF-8 for UTF-16 files) stream, after ``lines`` physical lines; ``columns``
    are given when resuming after the header."""
    stream: Any = open_stream(path)
    encoding = dialect.encoding
    if encoding == "utf-16":
        stream, encoding = _Utf16(stream), "utf-8"
    try:
        start = max(offset, dialect.bom)
        if start and isinstance(stream, io.BufferedReader):
            stream.seek(start)
        elif start:
            _skip(stream, start)
        where = {"dialect": asdict(dialect)}
        for batch in _batches(stream, config, dialect, encoding, columns, start, lines):
            resume = {**where, "offset": batch.offset, "lines": batch.lines,
                      "columns": list(batch.columns)}  # fmt: skip
            yield replace(batch, resume=resume)
    finally:
        stream.close()


def _skip(stream: Any, size: int) -> None:
    while size > 0:
        part = stream.read(min(size, 1 << 24))
        if not part:
            break
        size -= len(part)


def _batches(
    stream: Any, config: FileSource, dialect: Dialect, encoding: str,
    columns: tuple[str, ...] | None, offset: int, lines: int,
) -> Iterator[Batch]:  # fmt: skip
    delim = ord(dialect.delimiter)
    quote = ord(dialect.quote) if dialect.quote else None
    target = config.batch_rows
    want = 1 << 20
    pending, eof = b"", False
    while True:
        if not eof:
            block = bytes(stream.read(want))
            eof = not block
            pending = pending + block if pending else block
        if columns is not None and pending:
            fast = _fast_batch(pending, eof, columns, dialect, encoding, config, lines)
            if fast is not None:
                frame, records, end, newlines = fast
                lines, offset, pending = lines + newlines, offset + end, pending[end:]
                yield Batch(frame=frame, rejected=None, records=records, offset=offset,
                            lines=lines, columns=columns)  # fmt: skip
                want = int(min(max(end / records * target * 0.97, 1 << 16), 1 << 28))
                if eof and not pending:
                    return
                continue
        recs = split_records(pending, delim, quote, final=eof)
        count = len(recs.ends)
        if not count:
            if eof:
                return
            if len(pending) > MAX_RECORD_BYTES:
                raise SourceError(
                    f"The record that starts on line {lines + 1} is over 1 GB long.",
                    hint="Check the quoting: an unclosed quote makes the rest of the file one "
                    "field. Set quote_char to null if the file has no quoted fields.",
                )
            want = min(want * 2, 1 << 28)
            continue
        if columns is None:
            columns, used = _take_header(pending, recs, dialect, encoding)
            if used:
                lines += pending.count(b"\n", 0, used)
                offset, pending = offset + used, pending[used:]
                continue  # split what follows the header again
        done, base = 0, lines
        for i in range(0, count, target):
            j = min(i + target, count)
            end = min(int(recs.ends[j - 1]) + 1, len(pending))
            frame, rejected = _parse(pending, recs, i, j, columns, dialect, encoding, config,
                                     base)  # fmt: skip
            lines += pending.count(b"\n", done, end)
            offset, done = offset + end - done, end
            yield Batch(frame=frame, rejected=rejected, records=_counted(pending, recs, i, j),
                        offset=offset, lines=lines, columns=columns)  # fmt: skip
        pending = pending[done:]
        want = int(min(max(done / count * target * 0.97, 1 << 16), 1 << 28))
        if eof and not pending:
            return


def _fast_batch(
    buf: bytes, final: bool, columns: tuple[str, ...], dialect: Dialect, encoding: str,
    config: FileSource, line_base: int,
) -> tuple[pl.DataFrame, int, int, int] | None:  # fmt: skip
    """The common case cheaply: every complete record of ``buf`` has the header's number of
    fields, none is blank, and Polars parses them all. Returns the frame, the records, the
    bytes and the newlines used; None when any of that fails (the careful path takes over).

    The total of delimiters outside quotes equals records x (columns - 1) and no record has
    more fields (Polars refuses those), so every record has exactly as many as the header.
    """
    import numpy as np
    import polars as pl

    arr = np.frombuffer(buf, dtype=np.uint8)
    if not (dialect.quote and buf.find(dialect.quote.encode()) >= 0):
        found = _plain_records(buf, arr, final)
        if found is None:
            return None
        records, end, newlines, starts = found
        quotes = None
    else:
        nl = np.flatnonzero(arr == 10)
        quotes = np.flatnonzero(arr == ord(dialect.quote))
        inside = (np.searchsorted(quotes, nl) & 1).astype(bool)
        ends = nl[~inside]
        if final and (not len(nl) or nl[-1] != len(buf) - 1):
            if len(quotes) % 2:
                return None  # an unclosed quote
            ends = np.append(ends, len(buf))
        if not len(ends):
            return None
        end, records = min(int(ends[-1]) + 1, len(buf)), len(ends)
        starts = np.empty(records, dtype=np.int64)
        starts[0], starts[1:] = 0, ends[:-1] + 1
        if ((ends - starts) == 0).any() or ((ends - starts == 1) & (arr[starts] == 13)).any():
            return None  # a blank line: the careful path skips it
        newlines = int(np.searchsorted(nl, end))
        if not inside[:newlines].any():
            starts = None  # no newline inside quotes: a record is a line
        else:
            starts = np.searchsorted(nl, starts) + 1 + line_base
    if records > config.batch_rows:
        return None
    is_delim = arr[:end] == ord(dialect.delimiter)
    delims = int(np.count_nonzero(is_delim))
    if quotes is not None:
        delims -= _quoted_delimiters(is_delim, quotes[quotes < end])
    if delims != records * (len(columns) - 1):
        return None
    data = buf
    if encoding not in ("utf-8", "ascii"):
        try:
            data = buf[:end].decode(encoding).encode("utf-8")
        except UnicodeDecodeError:
            return None
    try:  # n_rows: Polars stops before the partial line at the end of the buffer
        frame = pl.read_csv(
            data, has_header=False, new_columns=list(columns), infer_schema=False,
            separator=dialect.delimiter, quote_char=dialect.quote,
            null_values=list(config.na_values), n_rows=records,
            row_index_name="_source_row", row_index_offset=line_base + 1,
        )  # fmt: skip
    except (pl.exceptions.PolarsError, ValueError, OverflowError):
        return None
    if frame.height != records or frame.width != len(columns) + 1:
        return None
    if starts is None:  # row index = line number
        frame = frame.with_columns(pl.col("_source_row").cast(pl.Int64))
    else:
        frame = frame.with_columns(pl.Series("_source_row", starts, dtype=pl.Int64))
    return frame.select(*columns, "_source_row"), records, end, newlines


def _plain_records(
    buf: bytes, arr: np.ndarray, final: bool
) -> tuple[int, int, int, None] | None:
    """Records, bytes and newlines of a buffer without quotes (a record is a line); None
    when it has a blank line or no complete line."""
    import numpy as np

    last = buf.rfind(b"\n")
    end = len(buf) if final else last + 1
    if end <= 0:
        return None
    newlines = int(np.count_nonzero(arr[:end] == 10)) if last >= 0 else 0
    tail = buf[last + 1 :] if final else b""
    if tail == b"\r" or buf.startswith((b"\n", b"\r\n")):
        return None
    if buf.find(b"\n\n", 0, end) >= 0 or buf.find(b"\n\r\n", 0, end) >= 0:
        return None
    return newlines + (1 if tail else 0), end, newlines, None


def _quoted_delimiters(is_delim: np.ndarray, quotes: np.ndarray) -> int:
    """Delimiters between an opening quote and its closing one (``is_delim``: a mask).

    Few quoted bytes (the usual case): the mask is read at just those bytes; else every
    delimiter is placed among the quotes (odd count before it: inside).
    """
    import numpy as np

    pairs = quotes[: len(quotes) - len(quotes) % 2].reshape(-1, 2)
    if not len(pairs):
        return 0
    starts, lengths = pairs[:, 0], pairs[:, 1] - pairs[:, 0]
    total = int(lengths.sum())
    if total * 4 < len(is_delim):
        before = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        inside = np.arange(total, dtype=np.int64) + np.repeat(starts - before, lengths)
        return int(np.count_nonzero(is_delim[inside]))
    positions = np.flatnonzero(is_delim)
    return int(np.count_nonzero(np.searchsorted(pairs.ravel(), positions) & 1))


def _take_header(
    buf: bytes, recs: _Records, dialect: Dialect, encoding: str
) -> tuple[tuple[str, ...] | None, int]:
    """The column names and the bytes the header used (blank lines before it included)."""
    for k in range(len(recs.ends)):
        s, e = int(recs.starts[k]), int(recs.ends[k])
        text = buf[s:e].decode(encoding, errors="replace").rstrip("\r")
        if not text.strip():
            continue
        if not dialect.header:
            return tuple(f"column_{n + 1}" for n in range(int(recs.fields[k]))), s
        cells = split_line(text, dialect.delimiter, dialect.quote)
        return _names(cells), min(e + 1, len(buf))
    return None, int(recs.ends[-1]) + 1 if len(recs.ends) else 0


def _names(cells: list[str]) -> tuple[str, ...]:
    names: list[str] = []
    for n, cell in enumerate(cells):
        name = cell.strip().lstrip("\ufeff") or f"column_{n + 1}"
        base, k = name, 1
        while name in names:
            k += 1
            name = f"{base}_{k}"
        names.append(name)
    return tuple(names)


def _blank(buf: bytes, recs: _Records, i: int, j: int) -> np.ndarray:
    import numpy as np

    s, e = recs.starts[i:j], recs.ends[i:j]
    arr = np.frombuffer(buf, dtype=np.uint8)
    length = e - s
    first = arr[np.minimum(s, max(len(buf) - 1, 0))] if len(buf) else np.zeros(len(s), np.uint8)
    return (length == 0) | ((length == 1) & (first == 13))


def _counted(buf: bytes, recs: _Records, i: int, j: int) -> int:
    return int((~_blank(buf, recs, i, j)).sum())


def _parse(
    buf: bytes, recs: _Records, i: int, j: int, columns: tuple[str, ...] | None,
    dialect: Dialect, encoding: str, config: FileSource, line_base: int,
) -> tuple[pl.DataFrame, pl.DataFrame | None]:  # fmt: skip
    """Records i..j of ``buf``: the rows that parse, and the rejected ones with reasons."""
    import numpy as np
    import polars as pl

    names = columns or ()
    starts, ends = recs.starts[i:j], recs.ends[i:j]
    lines = recs.lines[i:j] + line_base
    blank = _blank(buf, recs, i, j)
    good = (recs.fields[i:j] == len(names)) & ~blank
    reasons: dict[int, str] = {}
    first = "header" if dialect.header else "first line"
    for k in np.flatnonzero(~good & ~blank).tolist():
        found = recs.fields[i + k]
        reasons[k] = f"line {lines[k]} has {found} fields, the {first} has {len(names)}"
    _check_encoding(buf, starts, ends, good, lines, encoding, reasons)
    keep = np.flatnonzero(good)
    frame = _polars(buf, starts, ends, keep, names, dialect, encoding, config)
    if frame is None:
        frame, more = _by_records(buf, starts, ends, keep, names, dialect, encoding, config,
                                  lines)  # fmt: skip
        reasons.update(more)
        keep = np.array(sorted(set(keep.tolist()) - set(more)), dtype=np.int64)
    frame = frame.with_columns(pl.Series("_source_row", lines[keep], dtype=pl.Int64))
    rejected = None
    if reasons:
        order = sorted(reasons)
        raw = [buf[int(starts[k]) : int(ends[k])].decode(encoding, errors="backslashreplace")
               .rstrip("\r") for k in order]  # fmt: skip
        rejected = pl.DataFrame(
            {"_source_row": [int(lines[k]) for k in order], "_raw": raw,
             "_reasons": [reasons[k] for k in order]},
            schema={"_source_row": pl.Int64, "_raw": pl.String, "_reasons": pl.String},
        )  # fmt: skip
    return frame, rejected


def _check_encoding(
    buf: bytes, starts: np.ndarray, ends: np.ndarray, good: np.ndarray, lines: np.ndarray,
    encoding: str, reasons: dict[int, str],
) -> None:  # fmt: skip
    """Turn records whose bytes the encoding cannot decode into rejected ones."""
    import numpy as np

    if not len(starts):
        return
    view = memoryview(buf)
    cur, stop = int(starts[0]), min(int(ends[-1]) + 1, len(buf))
    while cur < stop:
        try:
            str(view[cur:stop], encoding)
            return
        except UnicodeDecodeError as exc:
            pos = cur + exc.start
            k = int(np.searchsorted(starts, pos, side="right")) - 1
            if good[k]:
                good[k] = False
                reasons[k] = (f"line {lines[k]} is not valid {encoding}: byte "
                              f"0x{buf[pos]:02x} at column {pos - int(starts[k]) + 1}")  # fmt: skip
            cur = int(ends[k]) + 1


def _runs(buf: bytes, starts: np.ndarray, ends: np.ndarray, keep: np.ndarray) -> bytes:
    import numpy as np

    if not len(keep):
        return b""
    if len(keep) == len(starts):
        return buf[int(starts[0]) : int(ends[-1]) + 1]
    breaks = np.flatnonzero(np.diff(keep) != 1)
    firsts = np.concatenate(([keep[0]], keep[breaks + 1]))
    lasts = np.concatenate((keep[breaks], [keep[-1]]))
    parts = [buf[int(starts[a]) : int(ends[b]) + 1] for a, b in zip(firsts, lasts, strict=True)]
    if parts and not parts[-1].endswith(b"\n"):
        parts[-1] += b"\n"
    return b"".join(parts)


def _polars(
    buf: bytes, starts: np.ndarray, ends: np.ndarray, keep: np.ndarray, names: tuple[str, ...],
    dialect: Dialect, encoding: str, config: FileSource,
) -> pl.DataFrame | None:  # fmt: skip
    """The kept records parsed by Polars as text; None when it disagrees with the splitter."""
    import polars as pl

    if not len(keep):
        return pl.DataFrame(schema={n: pl.String for n in names})
    data = _runs(buf, starts, ends, keep)
    if encoding not in ("utf-8", "ascii"):
        data = data.decode(encoding).encode("utf-8")
    try:
        frame = pl.read_csv(
            data, has_header=False, new_columns=list(names), infer_schema=False,
            separator=dialect.delimiter, quote_char=dialect.quote,
            null_values=list(config.na_values),
        )  # fmt: skip
    except (pl.exceptions.PolarsError, ValueError, OverflowError):
        return None
    if frame.height != len(keep) or frame.width != len(names):
        return None
    return frame


def _by_records(
    buf: bytes, starts: np.ndarray, ends: np.ndarray, keep: np.ndarray, names: tuple[str, ...],
    dialect: Dialect, encoding: str, config: FileSource, lines: np.ndarray,
) -> tuple[pl.DataFrame, dict[int, str]]:  # fmt: skip
    """The slow path: each record parsed by the csv module; the unparseable ones rejected."""
    import polars as pl

    na = set(config.na_values)
    quoting = {"quotechar": dialect.quote} if dialect.quote else {"quoting": csv.QUOTE_NONE}
    cols: list[list[str | None]] = [[] for _ in names]
    bad: dict[int, str] = {}
    for k in keep.tolist():
        text = buf[int(starts[k]) : int(ends[k])].decode(encoding).rstrip("\r")
        try:
            rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter,
                                   strict=True, **quoting))  # fmt: skip
        except csv.Error as exc:
            bad[k] = f"line {lines[k]} is not valid CSV: {exc}"
            continue
        if len(rows) != 1 or len(rows[0]) != len(names):
            found = len(rows[0]) if len(rows) == 1 else f"{len(rows)} rows of"
            bad[k] = (f"line {lines[k]} has {found} fields once its quotes are read, "
                      f"the header has {len(names)}")  # fmt: skip
            continue
        for col, cell in zip(cols, rows[0], strict=True):
            col.append(None if cell in na else cell)
    frame = pl.DataFrame({n: c for n, c in zip(names, cols, strict=True)},
                         schema={n: pl.String for n in names})  # fmt: skip
    return frame, bad
