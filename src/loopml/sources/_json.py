"""NDJSON and JSON files: nested objects flattened to ``a.b`` columns, arrays kept or exploded.

NDJSON is read in batches of lines; a line that is not a JSON object is rejected with its line
number. A JSON file holding an array of objects (or one object) is read whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.errors import SourceError, first_line
from loopml.sources._csv import Batch
from loopml.sources._dialect import open_stream

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.config import FileSource


def is_json_array(path: Path) -> bool:
    """Whether the file's first non-blank byte opens a JSON array (else: NDJSON)."""
    with open_stream(path) as stream:
        head = bytes(stream.read(4096))
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")


def flatten(frame: pl.DataFrame, arrays: str = "list") -> pl.DataFrame:
    """Structs become ``parent.child`` columns; with ``arrays="explode"`` each list becomes one
    row per element (an empty or missing list: one row of nulls; several list columns: every
    combination), then flattened again.

    >>> import polars as pl
    >>> f = pl.DataFrame({"a": [{"b": 1, "c": {"d": 2}}], "xs": [[1, 2]]})
    >>> flatten(f).columns
    ['a.b', 'a.c.d', 'xs']
    >>> flatten(f, "explode")["xs"].to_list()
    [1, 2]
    """
    import polars as pl

    while True:
        structs = [c for c, t in frame.schema.items() if isinstance(t, pl.Struct)]
        if structs:
            exprs: list[pl.Expr] = []
            for name, dtype in frame.schema.items():
                if name in structs:
                    fields = dtype.fields  # type: ignore[union-attr]
                    exprs += [pl.col(name).struct.field(f.name).alias(f"{name}.{f.name}")
                              for f in fields]  # fmt: skip
                else:
                    exprs.append(pl.col(name))
            frame = frame.select(exprs)
            continue
        lists = [c for c, t in frame.schema.items() if isinstance(t, (pl.List, pl.Array))]
        if arrays == "explode" and lists:
            frame = frame.explode(lists[0], empty_as_null=True, keep_nulls=True)
            continue
        return frame


def ndjson_batches(
    path: Path, config: FileSource, *, offset: int = 0, lines: int = 0
) -> Iterator[Batch]:
    """Batches of at most ``config.batch_rows`` lines from byte ``offset`` (after ``lines``)."""
    stream: Any = open_stream(path)
    try:
        if offset:
            part = offset
            while part > 0:
                got = stream.read(min(part, 1 << 24))
                if not got:
                    break
                part -= len(got)
        pending, eof = b"", False
        while not eof:
            block = bytes(stream.read(1 << 24))
            eof = not block
            pending = pending + block if pending else block
            cut = len(pending) if eof else pending.rfind(b"\n") + 1
            if cut <= 0:
                continue
            text, pending = pending[:cut], pending[cut:]
            rows = text.split(b"\n")
            if rows and rows[-1] == b"":
                rows.pop()
            for i in range(0, len(rows), config.batch_rows):
                part_rows = rows[i : i + config.batch_rows]
                frame, rejected, records = _parse_lines(part_rows, lines, config)
                lines += len(part_rows)
                offset += sum(len(r) + 1 for r in part_rows)
                yield Batch(frame=frame, rejected=rejected, records=records,
                            offset=offset, lines=lines, columns=(),
                            resume={"offset": offset, "lines": lines})  # fmt: skip
    finally:
        stream.close()


def _parse_lines(
    rows: list[bytes], line_base: int, config: FileSource
) -> tuple[pl.DataFrame, pl.DataFrame | None, int]:
    import polars as pl

    good: list[bytes] = []
    numbers: list[int] = []
    bad: list[tuple[int, str, str]] = []
    for n, raw in enumerate(rows, start=line_base + 1):
        stripped = raw.strip().lstrip(b"\xef\xbb\xbf")
        if not stripped:
            continue
        try:
            value = json.loads(stripped)
        except (ValueError, RecursionError) as exc:
            bad.append((n, raw.decode("utf-8", "backslashreplace"),
                        f"line {n} is not valid JSON: {first_line(exc)}"))  # fmt: skip
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__
            bad.append((n, raw.decode("utf-8", "backslashreplace"),
                        f"line {n} holds a JSON {kind}, not an object"))  # fmt: skip
            continue
        good.append(stripped)
        numbers.append(n)
    frame = _frame(good, numbers, config)
    rejected = None
    if bad:
        rejected = pl.DataFrame(
            {"_source_row": [b[0] for b in bad], "_raw": [b[1] for b in bad],
             "_reasons": [b[2] for b in bad]},
            schema={"_source_row": pl.Int64, "_raw": pl.String, "_reasons": pl.String},
        )  # fmt: skip
    return frame, rejected, len(good) + len(bad)


def _frame(good: list[bytes], numbers: list[int], config: FileSource) -> pl.DataFrame:
    import polars as pl

    if not good:
        return pl.DataFrame(schema={"_source_row": pl.Int64})
    try:
        frame = pl.read_ndjson(b"\n".join(good), infer_schema_length=None)
    except (pl.exceptions.PolarsError, ValueError):
        frame = pl.from_dicts([json.loads(g) for g in good], strict=False,
                              infer_schema_length=None)  # fmt: skip
    frame = frame.with_columns(pl.Series("_source_row", numbers, dtype=pl.Int64))
    return flatten(frame, config.arrays)


def read_json_array(path: Path, config: FileSource) -> pl.DataFrame:
    """A JSON file holding an array of objects (or one object), with ``_source_row`` 1..n."""
    import polars as pl

    with open_stream(path) as stream:
        data = bytes(stream.read())
    try:
        value = json.loads(data.lstrip(b"\xef\xbb\xbf"))
    except (ValueError, RecursionError) as exc:
        raise SourceError(
            f"{path.name} is not valid JSON: {first_line(exc)}",
            hint="Check that the file is complete; for one object a line, name it .ndjson.",
        ) from exc
    records = value if isinstance(value, list) else [value]
    if not all(isinstance(r, dict) for r in records):
        kinds = sorted({type(r).__name__ for r in records if not isinstance(r, dict)})
        raise SourceError(
            f"{path.name} holds a JSON array of {', '.join(kinds)} values, not of objects.",
            hint="Each element must be an object such as {\"id\": 1, \"x\": 2}.",
        )
    if not records:
        return pl.DataFrame(schema={"_source_row": pl.Int64})
    try:
        frame = pl.read_json(data, infer_schema_length=None)
    except (pl.exceptions.PolarsError, ValueError):
        frame = pl.from_dicts(records, strict=False, infer_schema_length=None)
    if frame.height != len(records):
        frame = pl.from_dicts(records, strict=False, infer_schema_length=None)
    frame = frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64)
                               .alias("_source_row"))  # fmt: skip
    return flatten(frame, config.arrays)
