"""Lake.merge: a Delta MERGE upsert by key, and the dead-letter zone's names."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from loopml.core.errors import LakeError
from loopml.lake import Lake, table_name

T = "feedback/m"


def _labels(keys: list[tuple[str, int]], labels: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "_request_id": [k[0] for k in keys],
            "_record": [k[1] for k in keys],
            "_label": labels,
            "_label_received_at": [datetime(2024, 1, 1, tzinfo=UTC)] * len(keys),
        }
    )


def _sorted(lake: Lake) -> list[tuple]:
    return sorted(lake.read(T).select("_request_id", "_record", "_label").rows())


def test_merge_creates_the_table_when_missing(tmp_path: Path) -> None:
    """The first merge creates the table with the batch's rows and types."""
    lake = Lake(tmp_path)
    ref = lake.merge(T, _labels([("a", 0), ("a", 1)], ["yes", "no"]), keys=["_request_id", "_record"])
    assert ref.version == 0
    assert _sorted(lake) == [("a", 0, "yes"), ("a", 1, "no")]
    assert lake.read(T).schema["_label_received_at"] == pl.Datetime("us", "UTC")


def test_merge_is_idempotent(tmp_path: Path) -> None:
    """Merging the same rows twice leaves the same rows."""
    lake = Lake(tmp_path)
    batch = _labels([("a", 0), ("b", 3)], ["yes", "no"])
    lake.merge(T, batch, keys=["_request_id", "_record"])
    ref = lake.merge(T, batch, keys=["_request_id", "_record"])
    assert ref.version == 1
    assert _sorted(lake) == [("a", 0, "yes"), ("b", 3, "no")]


def test_merge_replaces_matched_and_inserts_new_keys(tmp_path: Path) -> None:
    """A corrected value replaces the old one; unseen keys are added; others stay."""
    lake = Lake(tmp_path)
    lake.merge(T, _labels([("a", 0), ("a", 1)], ["yes", "no"]), keys=["_request_id", "_record"])
    lake.merge(T, _labels([("a", 1), ("c", 0)], ["yes", "no"]), keys=["_request_id", "_record"])
    assert _sorted(lake) == [("a", 0, "yes"), ("a", 1, "yes"), ("c", 0, "no")]


def test_merge_keeps_the_last_of_duplicate_keys(tmp_path: Path) -> None:
    """A batch that names one key twice upserts its last row, not an error."""
    lake = Lake(tmp_path)
    lake.merge(T, _labels([("a", 0)], ["no"]), keys=["_request_id", "_record"])
    lake.merge(T, _labels([("a", 0), ("a", 0)], ["yes", "no"]), keys=["_request_id", "_record"])
    assert _sorted(lake) == [("a", 0, "no")]


def test_merge_makes_frames_delta_compatible(tmp_path: Path) -> None:
    """Unsigned, categorical and null columns are cast as appends cast them."""
    lake = Lake(tmp_path)
    frame = pl.DataFrame({"k": pl.Series([1, 2], dtype=pl.UInt32), "c": ["x", "y"]}).with_columns(
        pl.col("c").cast(pl.Categorical), pl.lit(None).alias("n")
    )
    lake.merge(T, frame, keys=["k"])
    lake.merge(T, frame.with_columns(pl.Series("k", [2, 3], dtype=pl.UInt32)), keys=["k"])
    out = lake.read(T)
    assert out.schema["k"] == pl.Int64 and out.schema["c"] == pl.String
    assert sorted(out["k"].to_list()) == [1, 2, 3]


def test_merge_without_key_columns_is_a_lake_error(tmp_path: Path) -> None:
    """Keys the batch lacks are named in a LakeError."""
    with pytest.raises(LakeError, match="_record"):
        Lake(tmp_path).merge(T, pl.DataFrame({"_request_id": ["a"]}), keys=["_request_id", "_record"])


def test_dead_letter_tables_name_the_table_they_stand_for(tmp_path: Path) -> None:
    """deadletter/<zone>/<name> is a table; other nested names are refused."""
    lake = Lake(tmp_path)
    assert table_name("deadletter", "predictions/flights") == "deadletter/predictions/flights"
    lake.append("deadletter/predictions/flights", pl.DataFrame({"x": ["1"]}))
    assert "deadletter/predictions/flights" in lake.tables()
    with pytest.raises(LakeError):
        table_name("deadletter", "nowhere/flights")
