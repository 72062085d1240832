"""``compute.cluster``: a scheduler address or ``local`` (the default), and a cluster with the
embedded SQLite catalog refused before any work, with what was found and how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core.config import ProjectConfig
from loopml.core.errors import ConfigError
from loopml.pipeline import Project

BASE = {"name": "m", "sources": [{"name": "s", "path": "s.csv"}], "problem": {"source": "s"}}


def test_cluster_is_local_by_default_and_takes_a_scheduler_address() -> None:
    """Existing projects stay valid (local); tcp:// and tls:// addresses are taken."""
    assert ProjectConfig.from_dict(BASE).compute.local
    for address in ("tcp://scheduler:8786", "tls://10.0.0.5:8786"):
        cfg = ProjectConfig.from_dict({**BASE, "compute": {"cluster": address}})
        assert cfg.compute.cluster == address and not cfg.compute.local


def test_a_cluster_address_without_scheme_is_a_config_error() -> None:
    """'scheduler:8786' is refused with the key and an example of a valid address."""
    with pytest.raises(ConfigError) as caught:
        ProjectConfig.from_dict({**BASE, "compute": {"cluster": "scheduler:8786"}})
    assert "compute.cluster" in caught.value.message
    assert "tcp://scheduler:8786" in caught.value.message


@pytest.fixture
def project(tmp_path: Path) -> Project:
    rows = "".join(f"{i},{i % 3},{'ab'[i % 2]}\n" for i in range(60))
    (tmp_path / "data.csv").write_text("x,y,c\n" + rows)
    return Project.init(tmp_path / "data.csv", target="y", directory=tmp_path)


def test_a_cluster_with_a_sqlite_catalog_is_refused(project: Project) -> None:
    """--cluster on a project whose catalog is the SQLite file: a ConfigError naming both and
    how to fix it, before the lake is read (there is no clean table yet)."""
    with project:
        for call in (lambda: project.validate(cluster="tcp://127.0.0.1:8786"),
                     lambda: project.run(cluster="tcp://127.0.0.1:8786"),
                     lambda: project.predict(None, project.root / "o.parquet",
                                             table="clean/data", cluster="tcp://127.0.0.1:8786")):
            with pytest.raises(ConfigError) as caught:
                call()
            assert "sqlite" in caught.value.message
            assert "tcp://127.0.0.1:8786" in caught.value.message
            assert "storage.catalog_url" in (caught.value.hint or "")
        assert not project.lake.exists("clean/data")  # the run refused before ingesting
        assert project.catalog.runs() == []


def test_loopml_run_cluster_with_a_sqlite_catalog_says_so(project: Project, cli) -> None:
    """'loopml run --cluster ADDRESS' on the SQLite catalog exits non-zero with the reason and
    the fix, not a traceback."""
    code, out = cli("run", "--cluster", "tcp://127.0.0.1:8786", "--project", str(project.root))
    out = " ".join(out.split())  # as printed, wrapped to the terminal
    assert code != 0
    assert "PostgreSQL" in out and "storage.catalog_url" in out
    assert "Traceback" not in out


def test_a_bad_cluster_option_is_a_config_error(project: Project) -> None:
    """--cluster with something that is not an address says what to give."""
    with project, pytest.raises(ConfigError) as caught:
        project.validate(cluster="my-scheduler")
    assert "--cluster my-scheduler" in caught.value.message
    assert "tcp://scheduler:8786" in (caught.value.hint or "")


def test_a_local_run_records_where_it_trained(tmp_path: Path) -> None:
    """A run without a cluster logs a 'train' event: cluster 'local', no workers, every trial
    here, no Optuna study in a shared storage."""
    rows = "".join(f"{i},{i % 3},{'ab'[i % 2]}\n" for i in range(60))
    (tmp_path / "data.csv").write_text("x,y,c\n" + rows)
    project = Project.init(tmp_path / "data.csv", target="y", directory=tmp_path, training={
        "learners": ["linear"], "deterministic": True, "max_trials": 3, "cv_folds": 2})
    with project:
        result = project.run()
        [event] = project.catalog.events(kind="train")
    payload = event["payload"]
    assert event["subject"] == result.run_id
    assert (payload["cluster"], payload["workers"], payload["studies"]) == ("local", 0, [])
    tried = [c for c in result.leaderboard.candidates if c.origin != "ensemble"]
    assert payload["trials"] == payload["trials_here"] == len(tried) > 0
