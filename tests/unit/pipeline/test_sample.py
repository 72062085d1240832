"""``read_sample``: at most the asked rows of a table version, the same rows on every read,
the whole table (as ``Lake.read`` gives it) when it is no bigger, and a ``TableSample``
saying which."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from loopml.core.contract import ColumnSpec, Contract
from loopml.core.errors import LakeError
from loopml.lake import Lake
from loopml.pipeline._sample import read_sample
from loopml.quality import ROW_HASH, row_hash


def _lake(tmp_path: Path, *, parts: int = 4, rows: int = 2_500, hashed: bool = True) -> Lake:
    """A clean table of ``parts`` appends, each of ``rows`` distinct rows (with row hashes
    as ingest writes them, unless ``hashed`` is false)."""
    lake = Lake(tmp_path / "lake")
    rng = np.random.default_rng(0)
    contract = Contract(source="t", columns=(ColumnSpec(name="id", type="integer"),
                                             ColumnSpec(name="v", type="float")))
    for i in range(parts):
        frame = pl.DataFrame({"id": np.arange(i * rows, (i + 1) * rows),
                              "v": rng.normal(size=rows)})
        if hashed:
            frame = frame.with_columns(row_hash(frame, contract))
        lake.append("clean/t", frame)
    return lake


def test_sample_is_bounded_deterministic_and_drawn_from_the_table(tmp_path: Path) -> None:
    """A 10,000-row table sampled to 1,000: 1,000 of its rows, in table order, the same on a
    second read; another seed draws other rows; the record says where it sampled."""
    lake = _lake(tmp_path)
    frame, sample = read_sample(lake, "clean/t", rows=1_000)
    again, same = read_sample(lake, "clean/t", rows=1_000)
    other, _ = read_sample(lake, "clean/t", rows=1_000, seed=7)

    assert frame.height == 1_000
    assert_frame_equal(frame, again)
    assert sample == same
    assert (sample.table, sample.version, sample.rows_in_table, sample.rows_read) == (
        "clean/t", 3, 10_000, 1_000)
    assert sample.method == "row_hash" and not sample.whole and sample.seed == 0
    assert frame.columns == lake.read("clean/t").columns
    whole = lake.read("clean/t").with_row_index("at")
    at = frame.join(whole.select("id", "at"), on="id", how="left")["at"]
    assert at.is_sorted() and at.n_unique() == 1_000  # in the order a read gives the rows
    whole = whole.drop("at")
    assert frame.join(whole, on=["id", "v", ROW_HASH], how="anti").height == 0
    assert frame["id"].max() >= 7_500 and frame["id"].min() < 2_500  # every part drawn from
    assert len(set(frame["id"]) & set(other["id"])) < 300  # about 10% overlap by chance


def test_sample_reads_the_asked_version(tmp_path: Path) -> None:
    """An earlier version is sampled from its own rows only."""
    lake = _lake(tmp_path)
    frame, sample = read_sample(lake, "clean/t", version=1, rows=600)
    assert frame.height == 600 and frame["id"].max() < 5_000
    assert (sample.version, sample.rows_in_table) == (1, 5_000)


def test_small_table_is_read_whole(tmp_path: Path) -> None:
    """A table of no more rows than asked is the table itself, exactly as ``Lake.read``."""
    lake = _lake(tmp_path, parts=2, rows=300)
    frame, sample = read_sample(lake, "clean/t", rows=600)
    assert_frame_equal(frame, lake.read("clean/t"))
    assert sample.whole and sample.method == "all"
    assert (sample.rows_in_table, sample.rows_read, sample.version) == (600, 600, 1)
    assert "all 600 rows" in sample.note


def test_table_without_row_hashes_is_sampled_by_position(tmp_path: Path) -> None:
    """Rows without a ``_row_hash`` are drawn by their table position, as deterministically."""
    lake = _lake(tmp_path, hashed=False)
    frame, sample = read_sample(lake, "clean/t", rows=500)
    assert frame.height == 500 and sample.method == "position"
    assert_frame_equal(frame, read_sample(lake, "clean/t", rows=500)[0])
    assert "by row position" in sample.note


def test_no_rows_asked_is_an_error(tmp_path: Path) -> None:
    """Asking for no rows is a ``LakeError`` naming the setting."""
    lake = _lake(tmp_path, parts=1, rows=10)
    with pytest.raises(LakeError) as err:
        read_sample(lake, "clean/t", rows=0)
    assert "compute.sample_rows" in (err.value.hint or "")


def _text_bytes(frame: pl.DataFrame) -> int:
    """The bytes of every Arrow buffer ``frame``'s columns point into."""
    table = frame.to_arrow(compat_level=pl.CompatLevel.newest())
    return sum(b.size for column in table.columns for chunk in column.chunks
               for b in chunk.buffers() if b is not None)


def test_samples_hold_their_own_text_not_the_parts_text(tmp_path: Path) -> None:
    """Both samplers (training's and the profile's) keep a 1% sample of a text table in
    about 1% of its bytes: a filtered Polars text column would otherwise keep pointing into
    the whole part it came from, and a sample of a large table would hold all its text."""
    from loopml.pipeline._profiling import sample_parts

    lake = Lake(tmp_path / "lake")
    for i in range(4):
        lake.append("clean/t", pl.DataFrame(
            {"id": range(i * 5_000, (i + 1) * 5_000),
             "note": [f"{'x' * 200}{j}" for j in range(i * 5_000, (i + 1) * 5_000)]}))
    whole = _text_bytes(lake.read("clean/t"))
    by_hash, _ = read_sample(lake, "clean/t", rows=200)
    by_position = sample_parts(None, lake, lake.parts("clean/t"), rows=200, seed=0)
    for sample in (by_hash, by_position):
        assert 100 < sample.height <= 300
        assert _text_bytes(sample) < whole * 0.05
