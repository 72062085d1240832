"""HTTP API and media folder sources through the real ingest: lake tables, catalog cursors,
incremental re-runs, and rejected files in quarantine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from loopml.core.contract import ColumnSpec, Contract
from loopml.pipeline import Project
from tests.unit.sources.test_http import TOKEN, Api, serving
from tests.unit.sources.test_media import sine, write_wav


@pytest.fixture
def api() -> Iterator[Api]:
    with serving() as state:
        yield state


def project(root: Path, sources: list[dict[str, Any]],
            contracts: dict[str, tuple[ColumnSpec, ...]]) -> Path:
    config = {"name": "p", "sources": sources,
              "problem": {"source": sources[0]["name"], "target": None}}
    (root / "loopml.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for name, columns in contracts.items():
        Contract(source=name, columns=columns).save(root / "contracts" / f"{name}.yaml")
    return root


API_COLUMNS = (
    ColumnSpec(name="id", type="integer", nullable=False),
    ColumnSpec(name="name", type="string"),
    ColumnSpec(name="geo.lat", type="float"),
    ColumnSpec(name="ts", type="integer"),
)


def test_an_http_source_ingests_incrementally_by_watermark(
    tmp_path: Path, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages land in the clean table with provenance; the catalog keeps the watermark; the next
    ingest adds only newer records; the token is nowhere in the lake or the catalog."""
    monkeypatch.setenv("E2E_API_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_API_KEY", "k3y-VALUE-0815")
    source = {"name": "api", "kind": "http", "url": api.base + "/auth", "records": "items",
              "auth_env": "E2E_API_TOKEN", "params": {"api_key": "${TEST_API_KEY}"},
              "watermark": "ts", "since_param": "since"}
    root = project(tmp_path, [source], {"api": API_COLUMNS})
    with Project(root) as p:
        first = p.ingest()
        api.items.append({"id": 26, "name": "new", "geo": {"lat": 1.0, "lon": 0}, "ts": 13})
        second = p.ingest()
        third = p.ingest()
        clean = p.lake.read("clean/api").sort("id")
        cursor = p.catalog.cursor("api")
        events = str(p.catalog.events(kind="ingest"))
    assert sum(r.report.rows_accepted for r in first) == 25
    assert [r.report.rows_in for r in second] == [1] and third == []
    assert clean["id"].to_list() == list(range(1, 27))
    assert clean["geo.lat"][0] == pytest.approx(0.1)
    assert cursor is not None and cursor["watermark"] == 13
    assert set(clean["_source_file"].to_list()) == {api.base + "/auth", api.base + "/auth?since=12"}
    stored = clean.write_csv() + str(cursor) + events
    assert "s3cret-TOKEN-4711" not in stored and "k3y-VALUE-0815" not in stored


MEDIA_COLUMNS = (
    ColumnSpec(name="path", type="string", nullable=False),
    ColumnSpec(name="stem", type="string"),
    ColumnSpec(name="media", type="string"),
    ColumnSpec(name="mean_r", type="float"),
    ColumnSpec(name="rms", type="float"),
)


def test_a_media_folder_ingests_files_once_and_quarantines_unreadable_ones(
    tmp_path: Path,
) -> None:
    """Images and WAV files become rows of the clean table, a corrupt file a quarantined row;
    an unchanged folder adds nothing, a new file one row."""
    d = tmp_path / "media"
    d.mkdir()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(d / "a.png")
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8), mode="L").save(d / "b.jpg")
    write_wav(d / "c.wav", sine(440, 0.25))
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    source = {"name": "media", "kind": "media", "path": "media"}
    root = project(tmp_path, [source], {"media": MEDIA_COLUMNS})
    with Project(root) as p:
        first = p.ingest()
        again = p.ingest()
        Image.new("RGB", (2, 2), (0, 0, 255)).save(d / "d.png")
        later = p.ingest()
        clean = p.lake.read("clean/media").sort("path")
        quarantined = p.quarantined("media")
    assert sum(r.report.rows_accepted for r in first) == 3 and again == []
    assert [r.report.rows_accepted for r in later] == [1]
    assert clean["stem"].to_list() == ["a", "b", "c", "d"]
    assert clean["mean_r"].to_list()[:2] == [255.0, 0.0]
    assert clean["rms"][2] == pytest.approx(0.5 / 2**0.5, rel=1e-3)
    assert quarantined["_source_file"].to_list() == ["media/broken.png"]


@pytest.mark.parametrize("point", ["after_raw", "before_finish", "after_finish"])
def test_an_http_ingest_that_crashed_mid_run_loses_and_doubles_nothing(
    tmp_path: Path, api: Api, point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash while the second page commits: the next ingest finishes it and resumes after
    the last committed page; every record is in the clean table once, the watermark at max."""
    from loopml.pipeline import _commit

    api.items.reverse()  # newest first: the watermark must not move before the run completes
    source = {"name": "api", "kind": "http", "url": api.base + "/page", "records": "items",
              "pagination": "page", "watermark": "ts"}
    root = project(tmp_path, [source], {"api": API_COLUMNS})
    seen: list[str] = []

    def crash(at: str) -> None:
        seen.append(at)
        if at == point and seen.count(at) == 2:
            raise RuntimeError(f"crash at {at}")

    monkeypatch.setattr(_commit, "crash_hook", crash)
    with Project(root) as p, pytest.raises(RuntimeError, match="crash at"):
        p.ingest()
    monkeypatch.setattr(_commit, "crash_hook", None)
    with Project(root) as p:
        p.ingest()
        assert p.catalog.pending_ingests() == []
        clean = p.lake.read("clean/api")
        cursor = p.catalog.cursor("api")
        quarantined = p.quarantined("api", limit=100)
    assert sorted(clean["id"].to_list()) == list(range(1, 26))
    assert quarantined.height == 0
    assert cursor == {"watermark": 12, "at_watermark": cursor["at_watermark"]}
    assert len(cursor["at_watermark"]) == 2
