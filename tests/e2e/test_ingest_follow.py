"""``loopml ingest --follow`` stops on SIGTERM or SIGINT: the reader is told to stop, its last
chunk is committed, and the command exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ingest_project import make_project

# A stand-in stream reader: one chunk every 50 ms until stop is set, then a last chunk.
FAKE = """
import sys, time
import polars as pl
import loopml.sources
from loopml.core.records import Chunk

def fake(config, *, base_dir, cursor=None, follow=False, stop=None):
    n = (cursor or {}).get("n", 0)
    while True:
        last = stop.is_set()
        n += 1
        frame = pl.DataFrame({"id": [str(n)], "amount": ["1"], "label": ["x"],
                              "_source_file": ["topic"], "_source_row": [n]})
        yield Chunk(source=config.name, frame=frame, cursor={"n": n})
        if last:
            return
        time.sleep(0.05)

loopml.sources.read_chunks = fake
from loopml.cli import app
app(["ingest", "--follow", "--json"])
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_follow_flushes_the_last_chunk_and_exits_0(tmp_path: Path, sig: int) -> None:
    """After the signal the last chunk is in the lake and its cursor stored."""
    root = make_project(tmp_path)
    (root / "follow.py").write_text(FAKE)
    proc = subprocess.Popen([sys.executable, "follow.py"], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    lake = root / ".loopml" / "lake" / "clean" / "orders" / "_delta_log"
    for _ in range(600):  # until the first chunks are committed
        if lake.exists() and len(list(lake.glob("*.json"))) >= 3:
            break
        time.sleep(0.1)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    [summary] = json.loads(out)["sources"]
    from loopml.pipeline import Project

    with Project(root) as p:
        n = p.catalog.cursor("orders")["n"]
        clean = p.lake.read("clean/orders")
    assert summary["chunks"] == n == clean.height >= 3
    assert sorted(clean["_source_row"].to_list()) == list(range(1, n + 1))
