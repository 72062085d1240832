"""A staged append: many batches, one commit; a failure on the way commits nothing and leaves
no data file behind."""

from __future__ import annotations

import polars as pl
import pytest

from loopml.lake import Lake


def _files(lake: Lake, table: str) -> set[str]:
    from pathlib import Path

    return {p.name for p in Path(lake.path(table)).glob("*.parquet")}


def test_batches_become_one_version_with_their_rows_and_files(tmp_path) -> None:
    lake = Lake(tmp_path)
    lake.append("predictions/m", pl.DataFrame({"x": [0], "y": ["a"]}))
    with lake.staged("predictions/m", metadata={"loopml.stage": "predict"}) as stage:
        for start in (1, 3, 5):
            stage.add(pl.DataFrame({"x": [start, start + 1], "y": ["b", "c"]}))
        assert lake.rows("predictions/m") == 1  # not visible yet
    assert lake.version("predictions/m") == 1
    assert sorted(lake.read("predictions/m")["x"].to_list()) == list(range(7))
    commit = lake.history("predictions/m")[0]
    assert commit["operationMetrics"]["num_added_files"] == 3
    assert commit["operationMetrics"]["num_added_rows"] == 6
    assert commit["loopml.stage"] == "predict"


def test_an_error_in_the_block_commits_nothing_and_deletes_the_files(tmp_path) -> None:
    lake = Lake(tmp_path)
    lake.append("predictions/m", pl.DataFrame({"x": [0]}))
    before = _files(lake, "predictions/m")
    with pytest.raises(RuntimeError), lake.staged("predictions/m") as stage:
        stage.add(pl.DataFrame({"x": [1, 2]}))
        assert len(_files(lake, "predictions/m")) == len(before) + 1
        raise RuntimeError("a part failed")
    assert lake.version("predictions/m") == 0 and lake.rows("predictions/m") == 1
    assert _files(lake, "predictions/m") == before


def test_a_batch_with_a_new_column_is_held_and_committed_with_the_rest(tmp_path) -> None:
    lake = Lake(tmp_path)
    with lake.staged("predictions/t") as stage:
        stage.add(pl.DataFrame({"x": [1]}))
        stage.add(pl.DataFrame({"x": [2], "z": ["new"]}))
    out = lake.read("predictions/t").sort("x")
    assert out["x"].to_list() == [1, 2] and out["z"].to_list() == [None, "new"]
