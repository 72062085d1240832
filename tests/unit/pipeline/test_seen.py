"""Row hashes held from chunk to chunk: the same answers as scanning the table, and never an
answer for a version the held hashes do not stand for."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl

from loopml.lake import Lake
from loopml.pipeline import _seen
from loopml.pipeline._commit import TAG
from loopml.quality import ROW_HASH

TABLE = "clean/t"


def _append(lake: Lake, hashes: list[int], ingest_id: str) -> int:
    frame = pl.DataFrame({"x": hashes, ROW_HASH: hashes}, schema={"x": pl.Int64,
                                                                   ROW_HASH: pl.Int64})
    return lake.append(TABLE, frame, metadata={TAG: ingest_id}).version


def _found(lake: Lake, asked: list[int]) -> list[int]:
    version = lake.version(TABLE)
    seen = _seen.lookup(lake, TABLE, version, lake.scan(TABLE, version=version))
    return sorted(seen(pl.Series(ROW_HASH, asked, dtype=pl.Int64)).to_list())


def test_held_hashes_answer_as_a_scan_across_appends(tmp_path: Path) -> None:
    """Hashes remembered append by append (many segments) find exactly what the table holds."""
    lake = Lake(tmp_path / "lake")
    rng = np.random.default_rng(0)
    held: list[int] = []
    before = None
    for i in range(12):
        batch = rng.integers(-(2**62), 2**62, 50 + 37 * i).tolist()
        after = _append(lake, batch, f"i{i}")
        _seen.remember(lake, TABLE, before=before, after=after, ingest_id=f"i{i}",
                       hashes=pl.Series(ROW_HASH, batch, dtype=pl.Int64))
        before = after
        held += batch
    key = lake.path(TABLE)
    assert 1 < _seen._held[key].runs() <= 5 and _seen._held[key].rows == len(held)
    asked = held[::7] + rng.integers(-(2**62), 2**62, 200).tolist() + [None]
    assert _found(lake, asked) == sorted(held[::7])


def test_a_commit_not_remembered_is_read_from_the_table(tmp_path: Path) -> None:
    """Another writer's commit (or a merge, a replay) moves the table past what is held: the
    next lookup reads the table again and finds the new rows."""
    lake = Lake(tmp_path / "lake")
    v0 = _append(lake, [1, 2, 3], "a")
    _seen.remember(lake, TABLE, before=None, after=v0, ingest_id="a",
                   hashes=pl.Series(ROW_HASH, [1, 2, 3], dtype=pl.Int64))
    _append(lake, [4, 5], "b")  # not remembered
    assert _found(lake, [1, 4, 5, 6]) == [1, 4, 5]


def test_a_table_made_again_at_the_same_path_is_not_confused(tmp_path: Path) -> None:
    """A table removed and written again has the same path and version numbers; what was held
    for the old one is not used for the new one."""
    lake = Lake(tmp_path / "lake")
    v0 = _append(lake, [10, 11], "old")
    _seen.remember(lake, TABLE, before=None, after=v0, ingest_id="old",
                   hashes=pl.Series(ROW_HASH, [10, 11], dtype=pl.Int64))
    assert _found(lake, [10, 12]) == [10]
    shutil.rmtree(lake.path(TABLE))
    lake = Lake(tmp_path / "lake")
    _append(lake, [12], "new")
    assert _found(lake, [10, 12]) == [12]


def test_holding_hashes_costs_about_their_own_bytes() -> None:
    """Ten appends of 200,000 hashes are held in little more than their 16 MB: merging the
    sorted runs rewrites one bucket at a time (one sorted array of all of them peaked near
    2.5 times its size at each merge, 1 GB at 50 million rows)."""
    import tracemalloc

    rng = np.random.default_rng(1)
    batches = [rng.integers(0, 2**64, 200_000, dtype=np.uint64) for _ in range(10)]
    held = _seen._Held(identity=(0, "x"))
    tracemalloc.start()
    try:
        for batch in batches:
            held.add(batch)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = sum(b.nbytes for b in batches)
    assert held.rows == 2_000_000
    assert peak < size * 1.4  # the held hashes, a chunk being added and one bucket merging
    asked = np.concatenate([batches[3][:1000], rng.integers(0, 2**64, 1000, dtype=np.uint64)])
    assert held.found(asked)[:1000].all() and held.found(asked)[1000:].sum() == 0


def _mapped_resident_kb(folder: Path) -> int:
    """The resident kilobytes of this process's mappings of files in ``folder``."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line[:1].isalnum() and "-" in line.split(" ", 1)[0]:  # a mapping's first line
            inside = line.rstrip().endswith(".u64") and str(folder) in line
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def test_hashes_beyond_the_memory_budget_go_to_disk_and_are_not_kept_resident(
        monkeypatch) -> None:
    """Past ``MEMORY_KEYS`` the held hashes are files: what stays in memory is bounded, a
    lookup over them leaves none of their pages in the process, the answers are the same,
    and the files go with the index."""
    import gc

    monkeypatch.setattr(_seen, "MEMORY_KEYS", 100_000)
    rng = np.random.default_rng(2)
    batches = [rng.integers(0, 2**64, 150_000, dtype=np.uint64) for _ in range(12)]
    held = _seen._Held(identity=(0, "x"))
    for batch in batches:
        held.add(batch)
    assert held.rows == 1_800_000 and held.in_memory <= 100_000
    assert held.disk is not None and 1 < held.runs() <= 6
    folder = held.disk.folder
    files = list(folder.glob("*.u64"))
    assert sum(f.stat().st_size for f in files) == 8 * (held.rows - held.in_memory)
    asked = np.concatenate([batches[0][:5000], batches[11][-5000:],
                            rng.integers(0, 2**64, 5000, dtype=np.uint64)])
    hit = held.found(asked)
    assert hit[:10_000].all() and hit[10_000:].sum() == 0
    assert _mapped_resident_kb(folder) == 0  # 14 MB of hashes searched, none kept resident
    del held
    gc.collect()
    assert not folder.exists()


def test_a_table_read_into_the_index_spills_as_it_goes(tmp_path: Path, monkeypatch) -> None:
    """A table first held at a lookup is read in batches, spilling past the budget, and
    answers as a scan does."""
    monkeypatch.setattr(_seen, "MEMORY_KEYS", 1_000)
    monkeypatch.setattr(_seen, "_READ_ROWS", 700)
    lake = Lake(tmp_path / "lake")
    rng = np.random.default_rng(3)
    held: list[int] = []
    for i in range(4):  # not remembered: the lookup reads the table
        batch = rng.integers(-(2**62), 2**62, 1500).tolist()
        _append(lake, batch, f"i{i}")
        held += batch
    asked = held[::5] + rng.integers(-(2**62), 2**62, 300).tolist()
    assert _found(lake, asked) == sorted(held[::5])
    index = _seen._held[lake.path(TABLE)]
    assert index.rows == len(held) and index.disk is not None and index.in_memory <= 1_000


def test_the_folder_of_a_killed_ingest_is_removed_by_the_next_index(tmp_path: Path,
                                                                    monkeypatch) -> None:
    """A process killed while its index was on disk leaves its folder (no finalizer runs):
    the next index made on the machine removes it, and leaves a running process's alone."""
    import os
    import signal
    import subprocess
    import sys
    import tempfile

    code = ("import sys, time, numpy as np\n"
            "from loopml.pipeline import _seen\n"
            "s = _seen._Spilled()\n"
            "s.add(0, np.arange(1000, dtype=np.uint64))\n"
            "print(s.folder, flush=True)\n"
            "time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        left = Path(child.stdout.readline().strip())
        assert left.parent == tmp_path and list(left.glob("*.u64"))
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        mine = _seen._Spilled()
        assert left.exists()  # its process still runs
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    again = _seen._Spilled()
    assert not left.exists()
    assert mine.folder.exists() and again.folder.exists()
