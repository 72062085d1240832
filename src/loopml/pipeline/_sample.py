"""A bounded, deterministic sample of a lake table version, read part by part: what training,
its drift reference and the profile read of a clean table larger than ``compute.sample_rows``,
so that their memory follows the sample, not the table.

A row is kept when its key - the clean row's ``_row_hash`` mixed with the seed (a hash of its
table position where it has none) - is among the ``rows`` lowest of the version. One pass over
the parts keeps the keys below a threshold set a little above the expected share, so that at
most one part and about ``rows`` kept rows are held at once; the few extra rows are then cut
to the ``rows`` lowest keys. The same version, ``rows`` and seed give the same rows in the
same (table) order, wherever and however often it is read.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from loopml.core.errors import LakeError

if TYPE_CHECKING:
    import polars as pl

    from loopml.core.records import TablePart, TableSample
    from loopml.lake import Lake

_KEY = "__loopml_sample_key"
_AT = "__loopml_sample_at"
_SPAN = 2**64
_LOW = -(2**63)


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
    from loopml.core.records import TableSample

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
    threshold = _threshold(rows, total)
    kept: list[pl.DataFrame] = []
    method = "position"
    for part in parts:
        frame = lake.read_part(part)
        keys, by_hash = _keys(frame, part, seed)
        method = "row_hash" if by_hash else method
        frame = frame.with_columns(keys.alias(_KEY), _positions(part).alias(_AT))
        kept.append(frame if threshold is None else frame.filter(frame[_KEY] < threshold))
        del frame
    sample = _lowest(kept, rows)
    return sample, TableSample(table=table, version=at, rows_in_table=total,
                               rows_read=sample.height, method=method, seed=seed)


def _threshold(rows: int, total: int) -> int | None:
    """The key below which about ``rows`` plus a margin of the ``total`` rows fall: five
    standard deviations of the binomial count, so a pass almost never keeps fewer than
    ``rows`` (it then returns the fewer: a sample is at most ``rows``); None when the
    margin takes in every row."""
    wanted = rows + 5 * math.sqrt(rows) + 16
    if wanted >= total:
        return None
    return _LOW + math.ceil(_SPAN * wanted / total)


def _keys(frame: pl.DataFrame, part: TablePart, seed: int) -> tuple[pl.Series, bool]:
    """Each row's sampling key (Int64, spread evenly over its range) and whether the row
    hashes gave them: ``_row_hash`` where the row has one, else a hash of its table
    position; both mixed with ``seed`` so another seed draws other rows."""
    import polars as pl

    from loopml.quality import ROW_HASH

    at = pl.int_range(part.offset, part.offset + frame.height, dtype=pl.Int64, eager=True)
    by_position = at.hash(seed=seed + 1).reinterpret(signed=True)
    mix = _mix(seed)
    if ROW_HASH not in frame.columns or frame.height == 0:
        return by_position, False
    hashes = frame[ROW_HASH].cast(pl.Int64)
    both = pl.DataFrame({"h": hashes, "p": by_position})
    keys = both.select(
        pl.when(pl.col("h").is_not_null()).then(pl.col("h").xor(pl.lit(mix, dtype=pl.Int64)))
        .otherwise(pl.col("p"))
    ).to_series()
    return keys, hashes.null_count() < frame.height


def _positions(part: TablePart) -> pl.Series:
    import polars as pl

    return pl.int_range(part.offset, part.offset + part.rows, dtype=pl.Int64, eager=True)


def _lowest(kept: list[pl.DataFrame], rows: int) -> pl.DataFrame:
    """The ``rows`` rows of lowest key (ties by position) among ``kept``, in table order,
    without the helper columns."""
    import polars as pl

    frame = pl.concat(kept, how="diagonal_relaxed") if len(kept) > 1 else kept[0]
    if frame.height > rows:
        key, at = frame.select(_KEY, _AT).sort(_KEY, _AT).row(rows - 1)
        frame = frame.filter((pl.col(_KEY) < key) | ((pl.col(_KEY) == key) & (pl.col(_AT) <= at)))
    return frame.drop(_KEY, _AT)


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
