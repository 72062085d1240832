"""File sources: resolve a path, folder or glob, read each file, add provenance columns."""

from __future__ import annotations

import glob as globlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.errors import EmptyDataError, LoopmlError, SourceError, first_line
from loopml.core.records import Chunk, SourceBatch
from loopml.sources._csv import Batch, csv_batches
from loopml.sources._dialect import Dialect, detect
from loopml.sources._json import is_json_array, ndjson_batches, read_json_array

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.config import FileSource

_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
}
_COMPRESSED = (".gz", ".zst", ".zstd")


def resolve_files(path: str, *, base_dir: str | Path = ".") -> list[Path]:
    """The files a source path names: one file, every data file in a folder, or a glob.

    Relative paths are relative to ``base_dir`` (the project folder). Sorted, so that the
    row order of an ingest is reproducible.
    """
    base = Path(base_dir)
    full = Path(path) if Path(path).is_absolute() else base / path
    if any(ch in path for ch in "*?["):
        files = sorted(Path(p) for p in globlib.glob(str(full), recursive=True))
        files = [f for f in files if f.is_file()]
        if not files:
            raise SourceError(
                f"No files match {path!r} (looked in {full.parent.resolve()}).",
                hint="Check the pattern under sources.<name>.path in loopml.yaml.",
            )
        return files
    if full.is_dir():
        files = sorted(f for f in full.rglob("*") if f.is_file() and _format_of(f) is not None)
        if not files:
            raise SourceError(
                f"Folder {full} holds no CSV, Parquet or NDJSON files.",
                hint="Point the source at a file or a glob such as 'data/*.csv'.",
            )
        return files
    if not full.exists():
        raise SourceError(
            f"File {full} does not exist.",
            hint="Check the path; relative paths start at the project folder.",
        )
    return [full]


def read_source(
    config: FileSource,
    *,
    base_dir: str | Path = ".",
    files: list[Path] | None = None,
    rejected: list[pl.DataFrame] | None = None,
) -> SourceBatch:
    """Read every file of a source (or just ``files``) into one frame with ``_source_file``
    (the path relative to ``base_dir``) and ``_source_row`` (the CSV or NDJSON line number, or
    the row number in a Parquet file or JSON array).

    Lines that cannot be read (a ragged CSV line, a bad JSON line) are appended to ``rejected``
    when it is given; without it they are a ``SourceError`` naming the first one.
    """
    import polars as pl

    base = Path(base_dir)
    remote = _fetch_remote(config, base) if files is None else {}
    if files is None:
        files = list(remote) or resolve_files(config.path, base_dir=base)
    frames, counts, names, bad = [], [], [], []
    for f in files:
        name = remote.get(f) or _display(f, base)
        parts = []
        for batch in _batches(f, config, name):
            parts.append(batch.frame)
            if batch.rejected is not None and batch.rejected.height:
                bad.append(batch.rejected)
        if not parts:
            parts = [pl.DataFrame(schema={"_source_row": pl.Int64, "_source_file": pl.String})]
        frame = pl.concat(parts, how="diagonal_relaxed") if len(parts) > 1 else parts[0]
        frames.append(frame)
        counts.append(frame.height)
        names.append(name)
    if bad and sum(counts) == 0:
        first = bad[0]
        raise SourceError(
            f"No line of {', '.join(names)} could be read as rows; e.g. "
            f"{first['_reasons'][0]}.",
            hint=_rejected_hint(first["_reasons"][0]),
        )
    if bad:
        if rejected is None:
            first = bad[0]
            raise SourceError(
                f"{sum(b.height for b in bad)} line(s) of {first['_source_file'][0]} cannot be "
                f"read: {first['_reasons'][0]}.",
                hint=_rejected_hint(first["_reasons"][0]),
            )
        rejected.extend(bad)
    if sum(counts) == 0:
        raise EmptyDataError(
            f"Source {config.name!r} has no rows: {', '.join(names)} "
            f"{'holds' if len(names) == 1 else 'hold'} only a header.",
            hint="Add data rows to the file, or point the source at another file.",
        )
    frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
    return SourceBatch(
        source=config.name, frame=frame, files=tuple(names), rows_per_file=tuple(counts)
    )


def _rejected_hint(reason: str) -> str:
    if " is not valid utf" in reason:
        return ("Set sources.<name>.encoding in loopml.yaml (e.g. cp1252), or save the file as "
                "UTF-8 (e.g. 'iconv -f latin1 -t utf-8').")  # fmt: skip
    return ("Fix those lines (check the delimiter and quoting), or ingest the source: the "
            "ingest sets such lines aside in quarantine with their line numbers.")  # fmt: skip


def _fmt(path: Path, config: FileSource) -> str:
    fmt = config.format if config.format != "auto" else _format_of(path)
    if fmt is None:
        raise SourceError(
            f"Cannot tell the format of {path.name} from its extension.",
            hint="Set sources.<name>.format to csv, parquet or ndjson in loopml.yaml.",
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SourceError(f"Cannot read {path}: {exc.strerror}.") from exc
    if size == 0:
        raise EmptyDataError(
            f"{path} is empty (0 bytes).",
            hint="Check that the export that wrote it finished, or remove it from the source.",
        )
    return "ndjson" if fmt == "json" else fmt


def _batches(
    path: Path, config: FileSource, name: str, state: dict[str, Any] | None = None
) -> Iterator[Batch]:
    """The batches of one file from ``state`` (a partial cursor) on, with ``_source_file``;
    every backend error becomes a SourceError."""
    import polars as pl

    fmt = _fmt(path, config)
    try:
        for batch in _raw_batches(path, config, fmt, state or {}):
            frame = batch.frame.with_columns(pl.lit(name, dtype=pl.String).alias("_source_file"))
            rejected = batch.rejected
            if rejected is not None:
                rejected = rejected.with_columns(
                    pl.lit(name, dtype=pl.String).alias("_source_file")
                ).select("_source_file", "_source_row", "_raw", "_reasons")
            yield replace(batch, frame=frame, rejected=rejected)
    except PermissionError as exc:
        raise SourceError(
            f"Cannot read {path}: permission denied.",
            hint=f"Give the user running loopml read access (e.g. 'chmod a+r {path}').",
        ) from exc
    except LoopmlError:
        raise
    except (pl.exceptions.PolarsError, OSError, ValueError, EOFError) as exc:
        raise SourceError(
            f"Cannot read {path} as {fmt.upper()}: {first_line(exc)}",
            hint=_hint_for(fmt, exc),
        ) from exc


def _raw_batches(
    path: Path, config: FileSource, fmt: str, state: dict[str, Any]
) -> Iterator[Batch]:
    if fmt == "csv":
        if state.get("dialect"):
            dialect = Dialect(**state["dialect"])
        else:
            dialect = detect(path, config)
        columns = tuple(state["columns"]) if state.get("columns") is not None else None
        offset, lines = state.get("offset", 0), state.get("lines", 0)
        yield from csv_batches(path, config, dialect=dialect, columns=columns, offset=offset,
                               lines=lines)  # fmt: skip
        return
    if fmt == "parquet":
        yield from _parquet_batches(path, config, state.get("rows", 0))
        return
    if is_json_array(path):
        if state.get("rows"):
            return  # a JSON array is one batch: a partial cursor cannot point into it
        frame = read_json_array(path, config)
        yield Batch(frame=frame, rejected=None, records=frame.height, offset=0, lines=0,
                    columns=())  # fmt: skip
        return
    yield from ndjson_batches(path, config, offset=state.get("offset", 0),
                              lines=state.get("lines", 0))  # fmt: skip


def _parquet_batches(path: Path, config: FileSource, skip: int) -> Iterator[Batch]:
    import polars as pl
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as pf:
        done = 0
        for rb in pf.iter_batches(batch_size=config.batch_rows):
            if done + rb.num_rows <= skip:
                done += rb.num_rows
                continue
            frame = pl.from_arrow(rb)
            assert isinstance(frame, pl.DataFrame)
            if done < skip:
                frame, done = frame.slice(skip - done), skip
            numbers = pl.int_range(done + 1, done + frame.height + 1, dtype=pl.Int64)
            frame = frame.with_columns(numbers.alias("_source_row"))
            done += frame.height
            yield Batch(frame=frame, rejected=None, records=frame.height, offset=0, lines=0,
                        columns=())  # fmt: skip


def _format_of(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in _COMPRESSED:
        suffixes.pop()
    return _FORMATS.get(suffixes[-1]) if suffixes else None


def _fetch_remote(config: FileSource, base: Path) -> dict[Path, str]:
    """For an ``s3://`` path: the objects it names, copied under ``.loopml/objects/`` of the
    project (unchanged objects are not copied again), each local copy with its URI; else {}."""
    from loopml.core.config import STATE_DIR
    from loopml.core.objectstore import expand_options, fetch, is_remote

    if not is_remote(config.path):
        return {}
    options = expand_options(config.storage_options, where=f"sources.{config.name}."
                             "storage_options", error=SourceError)
    suffixes = tuple(_FORMATS) + tuple(f"{s}{c}" for s in _FORMATS for c in _COMPRESSED)
    found = fetch(config.path, Path(base) / STATE_DIR / "objects", options,
                  suffixes=suffixes, error=SourceError)
    return {local: uri for uri, local in found}


def _display(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _hint_for(fmt: str, exc: BaseException) -> str:
    text = str(exc).lower()
    if "utf-8" in text or "utf8" in text:
        return "Save the file as UTF-8 (e.g. 'iconv -f latin1 -t utf-8')."
    if fmt == "csv" and "fields" in text:
        return "A line has more fields than the header: check quoting and the delimiter."
    if fmt == "parquet":
        return "The file is not a valid Parquet file; re-export it or set the right format."
    return "Check that the file is complete and in the format its extension says."


def file_chunks(
    config: FileSource, *, base_dir: Path, cursor: dict[str, Any] | None
) -> Iterator[Chunk]:
    """The rows of a source's files not ingested yet, in chunks of at most ``batch_rows``.

    The cursor is ``{"files": {relative path: sha256}}`` of every file committed whole, plus
    ``"partial"`` for a file committed in part: its path, sha256, rows (parsed + rejected) and
    where the next batch starts (``offset`` into the stream, ``lines`` before it, the CSV
    dialect and columns), so that a crash between batches resumes after the last committed one.
    Each file's sha256 is computed once, before its first batch. An empty or header-only file
    yields one empty chunk (marking it done) when the source has other files, and is an
    ``EmptyDataError`` when it is the only one.
    """
    import polars as pl

    done: dict[str, str] = dict((cursor or {}).get("files", {}))
    partial: dict[str, Any] | None = (cursor or {}).get("partial")
    seen = set(done.values())
    remote = _fetch_remote(config, base_dir)
    paths = list(remote) or resolve_files(config.path, base_dir=base_dir)
    for path in paths:
        digest = _sha256(path)
        if digest in seen:
            continue
        name = remote.get(path) or _display(path, base_dir)  # an object: its s3 URI
        state = partial if partial and partial.get("sha256") == digest else {}
        rows = int(state.get("rows", 0))
        readable = path.stat().st_size or len(paths) == 1  # alone, an empty file is an error
        batches = _batches(path, config, name, state) if readable else iter(())
        if len(paths) == 1 and not state:
            batches = _require_rows(batches, path)
        batches = _ahead(batches)
        current = next(batches, None)
        while current is not None:
            following = next(batches, None)
            rows += current.records
            if following is None:
                done = {**done, name: digest}
                after: dict[str, Any] = {"files": dict(done)}
            else:
                after = {"files": dict(done), "partial": {
                    "path": name, "sha256": digest, "rows": rows, **current.resume}}
            yield Chunk(source=config.name, frame=current.frame, cursor=after, files=(name,),
                        rejected=current.rejected)  # fmt: skip
            current = following
        if name not in done:  # nothing in the file: mark it done with an empty chunk
            done = {**done, name: digest}
            empty = pl.DataFrame(schema={"_source_file": pl.String, "_source_row": pl.Int64})
            yield Chunk(source=config.name, frame=empty, cursor={"files": dict(done)},
                        files=(name,))  # fmt: skip
        seen.add(digest)
        partial = None


def _ahead(items: Iterator[Batch]) -> Iterator[Batch]:
    """``items``, each read in a thread while the one before is being committed (parsing and
    NumPy release the GIL): at most one batch waits. Errors come out where they happened."""
    import queue
    import threading

    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def fill() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(("end", None))
        except BaseException as exc:  # handed to the reader's thread, raised there
            box.put(("error", exc))

    worker = threading.Thread(target=fill, name="loopml-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while worker.is_alive():
            try:  # make room, so that a producer waiting to put sees the stop
                box.get(timeout=0.1)
            except queue.Empty:
                pass


def _require_rows(batches: Iterator[Batch], path: Path) -> Iterator[Batch]:
    """The batches, or an EmptyDataError when the file (a single-file source) has no rows."""
    got = 0
    for batch in batches:
        got += batch.records
        yield batch
    if not got:
        raise EmptyDataError(
            f"{path} has no rows: it holds only a header (or blank lines).",
            hint="Add data rows to the file, or point the source at another file.",
        )


def _sha256(path: Path) -> str:
    import hashlib

    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except PermissionError as exc:
        raise SourceError(
            f"Cannot read {path}: permission denied.",
            hint=f"Give the user running loopml read access (e.g. 'chmod a+r {path}').",
        ) from exc
    except OSError as exc:
        raise SourceError(f"Cannot read {path}: {exc.strerror}.") from exc
