"""The project file: loading, validation errors, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core.config import ProjectConfig
from loopml.core.errors import ConfigError, NotAProjectError

MINIMAL = """
name: shop
sources:
  - name: orders
    path: data/orders.csv
problem:
  source: orders
  target: churned
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "loopml.yaml"
    path.write_text(text)
    return path


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    """A minimal project file loads with every section defaulted."""
    cfg = ProjectConfig.load(write(tmp_path, MINIMAL), env={})
    assert cfg.training.time_budget_s == 120
    assert cfg.storage.catalog_url.startswith("sqlite:///")
    assert cfg.source().path == "data/orders.csv"


def test_round_trip_through_yaml(tmp_path: Path) -> None:
    """Saving and loading gives back an equal config."""
    cfg = ProjectConfig.load(write(tmp_path, MINIMAL), env={})
    again = ProjectConfig.load(cfg.save(tmp_path / "copy.yaml"), env={})
    assert again == cfg


def test_unknown_key_is_named(tmp_path: Path) -> None:
    """A misspelt key gives a ConfigError naming the key's location."""
    with pytest.raises(ConfigError) as info:
        ProjectConfig.load(write(tmp_path, MINIMAL + "training:\n  time_budget: 5\n"), env={})
    assert "training.time_budget" in info.value.message


def test_env_overrides_file(tmp_path: Path) -> None:
    """LOOPML_SECTION__FIELD variables override the file."""
    cfg = ProjectConfig.load(
        write(tmp_path, MINIMAL), env={"LOOPML_TRAINING__TIME_BUDGET_S": "7", "OTHER": "x"}
    )
    assert cfg.training.time_budget_s == 7


def test_missing_file_is_not_a_project(tmp_path: Path) -> None:
    """Loading where there is no loopml.yaml says how to create one."""
    with pytest.raises(NotAProjectError) as info:
        ProjectConfig.load(tmp_path, env={})
    assert "loopml init" in (info.value.hint or "")


def test_unknown_source_lists_valid_names(tmp_path: Path) -> None:
    """Asking for a source that does not exist lists the ones that do."""
    cfg = ProjectConfig.load(write(tmp_path, MINIMAL), env={})
    with pytest.raises(ConfigError) as info:
        cfg.source("ordres")
    assert "'orders'" in info.value.message
