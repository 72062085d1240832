"""``read_chunks``: one entry point over every source kind."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loopml.core.config import SourceConfig
from loopml.core.errors import SourceError
from loopml.core.records import Chunk


def read_chunks(
    config: SourceConfig,
    *,
    base_dir: str | Path = ".",
    cursor: dict[str, Any] | None = None,
    follow: bool = False,
    stop: threading.Event | None = None,
) -> Iterator[Chunk]:
    """The chunks of ``config`` that come after ``cursor`` (None: from the start).

    ``follow`` (streams only) keeps reading until ``stop`` is set, then yields what it holds
    as a last chunk. Readers never store cursors: the caller does, once a chunk is committed.
    """
    base = Path(base_dir)
    kind = config.kind
    if kind == "file":
        from loopml.sources._files import file_chunks

        return file_chunks(config, base_dir=base, cursor=cursor)
    if kind == "mqtt":
        from loopml.sources._mqtt import mqtt_chunks

        return mqtt_chunks(config, cursor=cursor, follow=follow, stop=stop)
    if follow:
        raise SourceError(
            f"Source {config.name!r} is a {kind} source; only streams (mqtt) can be followed.",
            hint="Drop --follow, or run 'loopml ingest' on a schedule.",
        )
    if kind == "sql":
        from loopml.sources._sql import sql_chunks

        return sql_chunks(config, base_dir=base, cursor=cursor)  # type: ignore[arg-type]
    if kind == "http":
        from loopml.sources._http import http_chunks

        return http_chunks(config, cursor=cursor)
    if kind == "media":
        from loopml.sources._media import media_chunks

        return media_chunks(config, base_dir=base, cursor=cursor)
    raise SourceError(f"Source kind {kind!r} of {config.name!r} cannot be read yet.")


def read_sample(config: SourceConfig, *, base_dir: str | Path = ".", rows: int = 100_000) -> Any:
    """At most ``rows`` rows of a source as a Polars frame, to infer a contract from (a file
    source is read whole, as ``read_source`` does; a SQL source by a bounded query)."""
    base = Path(base_dir)
    if config.kind == "sql":
        from loopml.sources._sql import sql_sample

        return sql_sample(config, base_dir=base, rows=rows)  # type: ignore[arg-type]
    if config.kind == "file":
        from loopml.sources._files import read_source

        return read_source(config, base_dir=base).frame
    raise SourceError(f"Source kind {config.kind!r} of {config.name!r} cannot be sampled yet.")
