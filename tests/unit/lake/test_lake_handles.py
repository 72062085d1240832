"""The lake keeps tables open between calls: what it reports stays the latest state on disk."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

from loopml.lake import Lake


def test_a_write_by_another_lake_is_seen(tmp_path: Path) -> None:
    ours, theirs = Lake(tmp_path), Lake(tmp_path)
    ours.append("raw/t", pl.DataFrame({"x": [1]}))
    assert ours.version("raw/t") == 0
    theirs.append("raw/t", pl.DataFrame({"x": [2], "y": ["new"]}))
    assert ours.version("raw/t") == 1
    ref = ours.append("raw/t", pl.DataFrame({"x": [3]}))  # written on the table as it is now
    assert ref.version == 2
    assert ours.read("raw/t").sort("x")["y"].to_list() == [None, "new", None]


def test_a_table_removed_and_made_again_is_not_mistaken_for_the_old_one(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    for x in range(3):
        lake.append("raw/t", pl.DataFrame({"x": [x]}))
    assert lake.version("raw/t") == 2
    shutil.rmtree(lake.path("raw/t"))
    other = Lake(tmp_path)  # made again elsewhere, to the same version number
    for s in "abc":
        other.append("raw/t", pl.DataFrame({"s": [s]}))
    ref = lake.append("raw/t", pl.DataFrame({"s": ["d"]}))
    assert ref.version == 3
    assert lake.read("raw/t").columns == ["s"]  # nothing of the removed table's schema
    shutil.rmtree(lake.path("raw/t"))
    assert lake.version("raw/t") is None and not lake.exists("raw/t")


def test_appends_checkpoint_every_hundred_versions(tmp_path: Path) -> None:
    """Fast appends keep the table cheap to open: a checkpoint at version 100, as delta-rs'
    own writer makes, and reads see every row."""
    lake = Lake(tmp_path / "lake")
    for i in range(101):
        lake.append("raw/t", pl.DataFrame({"x": [i]}))
    log = tmp_path / "lake" / "raw" / "t" / "_delta_log"
    assert (log / "00000000000000000100.checkpoint.parquet").exists()
    assert (log / "_last_checkpoint").exists()
    assert sorted(Lake(tmp_path / "lake").read("raw/t")["x"].to_list()) == list(range(101))
