"""A bounded, deterministic sample of a lake table version, read part by part: what training,
its drift reference and the profile read of a clean table larger than ``compute.sample_rows``,
so that their memory follows the sample, not the table.

A row is kept when its key - the clean row's ``_row_hash`` mixed with the seed (a hash of its
table position where it has none) - is among the ``rows`` lowest of the version, ties broken
by position. A first pass reads the key column alone, part by part, holding at most about
twice ``rows`` candidate keys, and so finds the cut; a second reads each part whole and keeps
its rows at or below the cut. At most one part and the sample are held at once, whatever
the keys' distribution. The same version, ``rows`` and seed give the same rows in the same
(table) order, wherever and however often it is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.core.errors import LakeError

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.records import TablePart, TableSample
    from loopml.lake import Lake

_KEY = "key"
_AT = "at"
_SPAN = 2**64


def read_sample(lake: Lake, table: str, *, version: int | None = None, rows: int,
                seed: int = 0) -> tuple[pl.DataFrame, TableSample]:
    """At most ``rows`` rows of ``table`` at ``version`` (default: the latest) and where they
    came from. A version of no more than ``rows`` rows is read whole, exactly as
    ``Lake.read`` gives it; a larger one is sampled by row hash (see the module).

    >>> import tempfile, polars as pl
    >>> from loopml.lake import Lake
    >>> lake = Lake(tempfile.mkdtemp())
    >>> for start in (0, 500):
    ...     _ = lake.append("clean/t", pl.DataFrame({"x": range(start, start + 500)}))
    >>> frame, sample = read_sample(lake, "clean/t", rows=300)
    >>> frame.height, sample.rows_in_table, sample.method
    (300, 1000, 'position')
    >>> frame.equals(read_sample(lake, "clean/t", rows=300)[0])
    True
    """
    import polars as pl

    from loopml.core.frames import own_buffers
    from loopml.core.records import TableSample
    from loopml.quality import ROW_HASH

    if rows < 1:
        raise LakeError(f"A sample of {table} needs at least one row; {rows} were asked for.",
                        hint="Set compute.sample_rows to a positive number.")
    parts = lake.parts(table, version=version)
    at = parts[0].version if parts else lake.ref(table).version if version is None else version
    total = sum(p.rows for p in parts)
    if total <= rows:
        frame = lake.read(table, version=at)
        return frame, TableSample(table=table, version=at, rows_in_table=frame.height,
                                  rows_read=frame.height, method="all", seed=seed)
    by_hash = ROW_HASH in lake.scan(table, version=at).collect_schema().names()
    key, position = _cut(lake, parts, rows, seed, by_hash=by_hash)
    kept: list[pl.DataFrame] = []
    for part in parts:
        frame = lake.read_part(part)
        keys = _keys(frame, part, seed)
        at_ = _positions(part)
        chosen = frame.filter((keys < key) | ((keys == key) & (at_ <= position)))
        kept.append(own_buffers(chosen))  # not the whole part's text buffers
        del frame, chosen
    sample = pl.concat(kept, how="diagonal_relaxed") if len(kept) > 1 else kept[0]
    return sample, TableSample(table=table, version=at, rows_in_table=total,
                               rows_read=sample.height,
                               method="row_hash" if by_hash else "position", seed=seed)


def _cut(lake: Lake, parts: tuple[TablePart, ...], rows: int, seed: int, *,
         by_hash: bool) -> tuple[int, int]:
    """The (key, position) of the ``rows``-th lowest key (ties by position): one pass over
    the key column alone, holding at most about twice ``rows`` candidates."""
    import polars as pl

    from loopml.quality import ROW_HASH

    held: list[pl.DataFrame] = []
    for part in parts:
        hashes = lake.read_part(part, columns=[ROW_HASH]) if by_hash else None
        keys = _keys(hashes, part, seed)
        held.append(pl.DataFrame({_KEY: keys, _AT: _positions(part)}))
        if sum(f.height for f in held) > 2 * rows:
            held = [pl.concat(held).sort(_KEY, _AT).head(rows)]
    lowest = pl.concat(held).sort(_KEY, _AT).head(rows)
    return lowest.row(rows - 1)


def _keys(frame: pl.DataFrame | None, part: TablePart, seed: int) -> pl.Series:
    """Each row's sampling key (Int64): ``_row_hash`` where the row has one, else a hash of
    its table position; both mixed with ``seed`` so another seed draws other rows."""
    import polars as pl

    from loopml.quality import ROW_HASH

    by_position = _positions(part).hash(seed=seed + 1).reinterpret(signed=True)
    if frame is None or ROW_HASH not in frame.columns or frame.height == 0:
        return by_position.alias(_KEY)
    both = pl.DataFrame({"h": frame[ROW_HASH].cast(pl.Int64), "p": by_position})
    return both.select(
        pl.when(pl.col("h").is_not_null())
        .then(pl.col("h").xor(pl.lit(_mix(seed), dtype=pl.Int64)))
        .otherwise(pl.col("p")).alias(_KEY)
    ).to_series()


def _positions(part: TablePart) -> pl.Series:
    import polars as pl

    return pl.int_range(part.offset, part.offset + part.rows, dtype=pl.Int64, eager=True,
                        ).alias(_AT)


def _mix(seed: int) -> int:
    """A 64-bit constant from ``seed`` (splitmix64's finaliser) as a signed integer; XOR by it
    permutes keys, so each seed orders the rows differently; seed 0 keeps the row hash."""
    if seed == 0:
        return 0
    z = (seed * 0x9E3779B97F4A7C15) % _SPAN
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % _SPAN
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % _SPAN
    z ^= z >> 31
    return z - _SPAN if z >= 2**63 else z
