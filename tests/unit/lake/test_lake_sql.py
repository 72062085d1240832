"""SQL over the lake (DuckDB over the Parquet files Delta lists for a version)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from loopml.core.errors import LakeError
from loopml.lake import Lake, view_name


def test_each_table_is_a_view_named_zone_name(tmp_path: Path) -> None:
    """clean/flights is clean_flights; tables of several zones join in one query."""
    lake = Lake(tmp_path)
    lake.append("clean/flights", pl.DataFrame({"id": [1, 2, 3], "origin": ["JFK", "LGA", "JFK"]}))
    lake.append("feedback/my-model", pl.DataFrame({"id": [1, 3], "label": [True, False]}))
    assert view_name("feedback/my-model") == "feedback_my_model"
    out = lake.sql("SELECT f.origin, count(*) AS n FROM clean_flights f "
                   "JOIN feedback_my_model l USING (id) GROUP BY 1")
    assert out.rows() == [("JFK", 2)]


def test_sql_reads_the_latest_version_or_a_chosen_one(tmp_path: Path) -> None:
    """Without versions the latest is queried; versions= pins a table to an earlier one."""
    lake = Lake(tmp_path)
    lake.append("raw/t", pl.DataFrame({"x": [1]}))
    lake.append("raw/t", pl.DataFrame({"x": [2]}))
    query = "SELECT count(*) AS n FROM raw_t"
    assert lake.sql(query)["n"].to_list() == [2]
    assert lake.sql(query, versions={"raw/t": 0})["n"].to_list() == [1]


def test_sql_sees_the_delta_schema(tmp_path: Path) -> None:
    """A merged-in column reads null for old rows; partition columns keep their types."""
    lake = Lake(tmp_path)
    when = datetime(2013, 1, 1, tzinfo=UTC)
    lake.append("clean/p", pl.DataFrame({"year": [2013], "x": [1]}), partition_by=["year"])
    lake.append("clean/p", pl.DataFrame({"year": [2014], "x": [2], "t": [when]}))
    out = lake.sql("SELECT year + 1 AS next, x, t FROM clean_p ORDER BY x")
    assert out["next"].to_list() == [2014, 2015]
    assert out["t"].to_list() == [None, when]
    lake.append("clean/q", pl.DataFrame({"k": [None, 1], "v": ["a", "b"]},
                                        schema={"k": pl.Int64, "v": pl.String}),
                partition_by=["k"])
    assert lake.sql("SELECT k, v FROM clean_q ORDER BY v").rows() == [(None, "a"), (1, "b")]


def test_bad_sql_is_a_clear_error_naming_the_views(tmp_path: Path) -> None:
    """A syntax error or an unknown view is a LakeError with DuckDB's first line."""
    lake = Lake(tmp_path)
    lake.append("clean/t", pl.DataFrame({"x": [1]}))
    with pytest.raises(LakeError, match="syntax error") as info:
        lake.sql("SELEC x FROM clean_t")
    assert "clean_t" in (info.value.hint or "") and "\n" not in info.value.message
    with pytest.raises(LakeError, match="nope"):
        lake.sql("SELECT * FROM nope")
    with pytest.raises(LakeError, match="empty"):
        lake.sql("  ")


def test_sql_in_a_fresh_interpreter_exits_cleanly(tmp_path: Path) -> None:
    """A process that queried the lake exits 0 (deltalake's dataset is never given to DuckDB)."""
    lake = Lake(tmp_path)
    lake.append("clean/t", pl.DataFrame({"x": [1, 2]}))
    code = ("from loopml.lake import Lake; import sys; "
            "print(Lake(sys.argv[1]).sql('SELECT max(x) AS m FROM clean_t')['m'][0])")
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.strip() == "2", done.stderr
