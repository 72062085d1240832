"""Stages per partition: a function mapped over the Parquet files of a lake table version, in
this process (``compute.cluster: local``) or on the workers of a Dask cluster, its results
handed back in the table's order for the caller to merge.

Dask is imported only here and only with a cluster configured, so ``import loopml`` and a
local run never load it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from loopml.core.cluster import wait_done
from loopml.core.errors import ClusterError, ConfigError, first_line

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.config import ProjectConfig
    from loopml.core.records import TablePart
    from loopml.lake import Lake

T = TypeVar("T")
PartFn = Callable[..., T]  # (the part's rows, the part, *args) -> a result to merge
CONNECT_TIMEOUT_S = 10


def require_shared_catalog(config: ProjectConfig) -> None:
    """A cluster needs a catalog that every machine reaches: PostgreSQL, not a SQLite file.

    >>> from loopml.core.config import ProjectConfig
    >>> cfg = ProjectConfig.from_dict({"name": "m", "sources": [{"name": "s", "path": "s.csv"}],
    ...     "problem": {"source": "s"}, "compute": {"cluster": "tcp://scheduler:8786"}})
    >>> require_shared_catalog(cfg)
    Traceback (most recent call last):
    loopml.core.errors.ConfigError: compute.cluster is tcp://scheduler:8786, but the catalog ...
    Hint: Set storage.catalog_url ...
    """
    import sqlalchemy as sa

    if config.compute.local:
        return
    try:
        url = sa.make_url(config.storage.catalog_url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"storage.catalog_url is not a database URL: {first_line(exc)}",
                          hint="Write one such as postgresql+psycopg://USER@HOST:5432/DB.") from exc
    if url.get_backend_name() != "postgresql":
        raise ConfigError(
            f"compute.cluster is {config.compute.cluster}, but the catalog is "
            f"{url.get_backend_name()} ({url.render_as_string(hide_password=True)}): the "
            "workers and every machine of a cluster need one catalog they all reach, and an "
            "embedded SQLite file is on one machine only.",
            hint="Set storage.catalog_url to a PostgreSQL database "
            "(postgresql+psycopg://USER@HOST:5432/DB), or compute.cluster: local.",
        )


@contextmanager
def connect(config: ProjectConfig) -> Iterator[Any]:
    """A ``distributed.Client`` of the configured scheduler, closed afterwards; None for
    ``compute.cluster: local`` (the work then runs in this process)."""
    if config.compute.local:
        yield None
        return
    require_shared_catalog(config)
    try:
        from distributed import Client
    except ImportError as exc:
        raise ConfigError(
            f"compute.cluster is {config.compute.cluster}, but Dask is not installed.",
            hint="pip install 'loopml[cluster]' (dask[distributed]), or compute.cluster: local.",
        ) from exc
    address = config.compute.cluster
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"Cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT_S} s: "
            f"{first_line(exc)}",
            hint="Start it ('dask scheduler', then 'dask worker ADDRESS' on each machine), "
            "fix compute.cluster, or run with --cluster local.",
        ) from exc
    try:
        yield client
    finally:
        client.close()


def map_parts(client: Any, lake: Lake, parts: Sequence[TablePart], fn: PartFn[T],
              *args: Any) -> list[T]:
    """``fn(rows, part, *args)`` for every part, in the parts' order: one after another here
    when ``client`` is None, else as one task per part on the cluster's workers, which read
    their part from the lake themselves. ``args`` go to the cluster once, as a task every
    part depends on, so that the scheduler computes them again if the worker holding them
    dies.

    A worker that dies while it works on a part (killed, out of memory) costs that part a
    try: the scheduler runs it again on another worker, up to
    ``distributed.scheduler.allowed-failures`` times (3 by default), and the stage gets the
    same results. A part whose every try killed its worker ends the stage with a
    ``ClusterError`` naming the part and the last worker, and so does a cluster left without
    any worker for ``core.cluster.NO_WORKERS_S`` seconds (its scheduler would keep the parts
    waiting forever); the results of the other parts are dropped, and as the stages write only
    once every part is done, nothing is written.

    >>> import tempfile, polars as pl
    >>> from loopml.lake import Lake
    >>> lake = Lake(tempfile.mkdtemp())
    >>> for x in ([1, 2], [3]):
    ...     _ = lake.append("clean/t", pl.DataFrame({"x": x}))
    >>> sorted(map_parts(None, lake, lake.parts("clean/t"), lambda rows, part: rows.height))
    [1, 2]
    """
    if client is None:
        return [fn(lake.read_part(p), p, *args) for p in parts]
    if not parts:
        return []
    import uuid

    keys = {f"loopml-part-{uuid.uuid4().hex[:8]}-{p.index}": p for p in parts}
    futures: list[Any] = []
    with _failures(client, parts, keys, futures):
        shared = client.submit(_unbox, _Box(args), pure=False,
                               key=f"loopml-args-{uuid.uuid4().hex}")
        futures.extend(client.map(_on_worker, list(parts), lake_uri=lake.uri,
                                  storage_options=lake.storage_options, fn=fn, args=shared,
                                  pure=False, key=list(keys)))
        wait_done(client, futures, what=_what(parts))
        return list(client.gather(futures))
    raise AssertionError("unreachable")  # _failures raises


@contextmanager
def _failures(client: Any, parts: Sequence[TablePart], keys: dict[str, TablePart],
              futures: Any) -> Iterator[None]:
    """A part that killed a worker at every try, a cluster left without workers, or a lost
    scheduler, as a ``ClusterError`` (the other parts' ``futures`` cancelled)."""
    from distributed import KilledWorker

    try:
        yield
    except ClusterError:  # no worker left
        client.cancel(list(futures))
        raise
    except KilledWorker as exc:
        client.cancel(list(futures))
        part = keys.get(str(exc.task))
        where = (f"part {part.index} ({part.path}, {part.rows:,} rows)" if part is not None
                 else f"the task {exc.task!r}")
        worker = getattr(exc.last_worker, "address", exc.last_worker)
        raise ClusterError(
            f"A worker died on every one of {exc.allowed_failures + 1} tries at {where} of "
            f"{parts[0].table}@v{parts[0].version}; the last was {worker}.",
            hint="Nothing was written. Read the workers' logs for why they died; give them "
            "more memory (a part's rows are read whole), or use smaller files ('loopml lake "
            "optimize' rewrites them).",
        ) from exc
    except (OSError, TimeoutError) as exc:  # the scheduler went away mid-stage
        raise ClusterError(
            f"Lost the Dask cluster while working on {parts[0].table}: {first_line(exc)}",
            hint="Nothing was written; run the command again once the scheduler is back.",
        ) from exc


def _what(parts: Sequence[TablePart]) -> str:
    return f"{len(parts)} parts of {parts[0].table}@v{parts[0].version}"


class _Box:
    """The shared arguments, as one opaque value (Dask looks inside tuples for tasks)."""

    def __init__(self, value: tuple[Any, ...]) -> None:
        self.value = value


def _unbox(box: _Box) -> tuple[Any, ...]:
    return box.value


def iter_parts(client: Any, lake: Lake, parts: Sequence[TablePart], fn: PartFn[T],
               *args: Any, ahead: int = 4) -> Iterator[T]:
    """``map_parts`` one result at a time, in the parts' order, for a caller that writes each
    away before the next: here each part is read only when the one before was taken; on a
    cluster at most ``ahead`` parts are worked on or waiting to be taken, so neither this
    process nor the workers hold more than a few parts' results. A killed worker costs a part
    a try as in ``map_parts``; a part that kills every worker raises the same ``ClusterError``.

    >>> import tempfile, polars as pl
    >>> from loopml.lake import Lake
    >>> lake = Lake(tempfile.mkdtemp())
    >>> for x in ([1, 2], [3]):
    ...     _ = lake.append("clean/t", pl.DataFrame({"x": x}))
    >>> sorted(iter_parts(None, lake, lake.parts("clean/t"), lambda rows, part: rows.height))
    [1, 2]
    """
    if client is None:
        for p in parts:
            yield fn(lake.read_part(p), p, *args)
        return
    if not parts:
        return
    import uuid
    from collections import deque

    keys: dict[str, TablePart] = {}
    queue: deque[Any] = deque()
    with _failures(client, parts, keys, queue):
        shared = client.submit(_unbox, _Box(args), pure=False,
                               key=f"loopml-args-{uuid.uuid4().hex}")
        waiting = iter(parts)

        def submit() -> None:
            part = next(waiting, None)
            if part is not None:
                key = f"loopml-part-{uuid.uuid4().hex[:8]}-{part.index}"
                keys[key] = part
                queue.append(client.submit(
                    _on_worker, part, lake_uri=lake.uri, storage_options=lake.storage_options,
                    fn=fn, args=shared, pure=False, key=key))

        for _ in range(max(1, ahead)):
            submit()
        while queue:
            future = queue.popleft()
            wait_done(client, [future], what=_what(parts))
            result = future.result()
            future.release()
            submit()
            yield result


def _on_worker(part: TablePart, *, lake_uri: str, storage_options: dict[str, str] | None,
               fn: PartFn[T], args: tuple[Any, ...]) -> T:
    from loopml.lake import Lake

    rows: pl.DataFrame = Lake(lake_uri, storage_options=storage_options).read_part(part)
    return fn(rows, part, *args)
