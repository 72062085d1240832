"""A cluster whose workers are all gone ends a stage with a clear error instead of leaving it
waiting forever (the scheduler keeps tasks no worker can take waiting for one)."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

from loopml.core import cluster as core_cluster
from loopml.core.errors import ClusterError
from loopml.lake import Lake
from loopml.pipeline._cluster import iter_parts, map_parts


def _height(rows: pl.DataFrame, part) -> int:
    return rows.height


def test_a_stage_on_a_cluster_without_workers_fails_clearly(tmp_path: Path,
                                                            monkeypatch) -> None:
    from distributed import Client, LocalCluster

    monkeypatch.setattr(core_cluster, "NO_WORKERS_S", 1.0)
    monkeypatch.setattr(core_cluster, "POLL_S", 0.2)
    lake = Lake(tmp_path / "lake")
    for x in ([1, 2], [3]):
        lake.append("clean/t", pl.DataFrame({"x": x}))
    parts = lake.parts("clean/t")
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:  # as loopml connects
        assert sorted(map_parts(client, lake, parts, _height)) == [1, 2]
        cluster.scale(0)
        deadline = time.monotonic() + 30
        while client.nthreads() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not client.nthreads()
        for run in (lambda: map_parts(client, lake, parts, _height),
                    lambda: list(iter_parts(client, lake, parts, _height))):
            with pytest.raises(ClusterError, match="no worker for 1 s while 2 parts of clean/t"):
                run()  # before, it waited for a worker forever
