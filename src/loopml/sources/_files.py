"""File sources: resolve a path, folder or glob, read each file, add provenance columns."""

from __future__ import annotations

import glob as globlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.errors import EmptyDataError, SourceError, first_line
from loopml.core.records import Chunk, SourceBatch

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
    config: FileSource, *, base_dir: str | Path = ".", files: list[Path] | None = None
) -> SourceBatch:
    """Read every file of a source (or just ``files``) into one frame with ``_source_file``
    (the path relative to ``base_dir``) and ``_source_row`` (1-based row in that file)."""
    import polars as pl

    base = Path(base_dir)
    remote = _fetch_remote(config, base) if files is None else {}
    if files is None:
        files = list(remote) or resolve_files(config.path, base_dir=base)
    frames, counts, names = [], [], []
    for f in files:
        frame = _read_file(f, config)
        name = remote.get(f) or _display(f, base)
        frame = frame.with_columns(
            pl.lit(name).alias("_source_file"),
            pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("_source_row"),
        )
        frames.append(frame)
        counts.append(frame.height)
        names.append(name)
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


def _read_file(path: Path, config: FileSource) -> pl.DataFrame:
    import polars as pl

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
    try:
        if fmt == "csv":
            separator = "\t" if path.suffix == ".tsv" else (config.delimiter or ",")
            return pl.read_csv(
                path,
                infer_schema=False,  # all text: lossless; quality converts to the contract
                null_values=list(config.na_values),
                separator=separator,
            )
        if fmt == "parquet":
            return pl.read_parquet(path)
        return _read_json(path)
    except PermissionError as exc:
        raise SourceError(
            f"Cannot read {path}: permission denied.",
            hint=f"Give the user running loopml read access (e.g. 'chmod a+r {path}').",
        ) from exc
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise SourceError(
            f"Cannot read {path} as {fmt.upper()}: {first_line(exc)}",
            hint=_hint_for(fmt, exc),
        ) from exc


def _read_json(path: Path) -> pl.DataFrame:
    import polars as pl

    with path.open("rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"["):
        return pl.read_json(path, infer_schema_length=None)
    return pl.read_ndjson(path, infer_schema_length=None)


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
    """The files of a source not ingested yet (by sha256), one chunk per file.

    The cursor is ``{"files": {relative path: sha256}}`` of every file committed so far.
    """
    import hashlib

    import polars as pl

    done: dict[str, str] = dict((cursor or {}).get("files", {}))
    seen = set(done.values())
    remote = _fetch_remote(config, base_dir)
    for path in list(remote) or resolve_files(config.path, base_dir=base_dir):
        with path.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        if digest in seen:
            continue
        batch = read_source(config, base_dir=base_dir, files=[path])
        name = batch.files[0]
        if path in remote:  # an object on S3: its address, not the local copy's path
            name = remote[path]
            batch = replace(batch, files=(name,), frame=batch.frame.with_columns(
                pl.lit(name).alias("_source_file")))
        done = {**done, name: digest}
        seen.add(digest)
        yield Chunk(source=config.name, frame=batch.frame, cursor={"files": dict(done)},
                    files=(name,))
