"""A model version carried to another catalog: its registered files and its record.

``export_version`` writes ``<dest>/files/`` (the version's files, verified against the
catalog's sha256 first) and ``<dest>/model.json`` (name, version, task, metric, score,
metrics, and every file's sha256 and size). ``install_version`` checks the files against
``model.json`` and registers them in another catalog - or finds the version it registered
before, so installing the same bundle again (each time a container starts) changes nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.errors import RegistryError
from loopml.registry import _files

if TYPE_CHECKING:
    from loopml.core.records import ModelVersion
    from loopml.registry._catalog import Catalog

RECORD = "model.json"
FILES = "files"
FORMAT = 1


def export_version(catalog: Catalog, name: str, ref: int | str, dest: Path) -> ModelVersion:
    """Write the version ``name@ref`` to ``dest`` (emptied first) as a bundle."""
    mv = catalog.model_version(name, ref)
    source = catalog.fetch(mv.name, mv.version)  # verifies every file's sha256
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest / FILES)
    record = {
        "format": FORMAT, "name": mv.name, "version": mv.version, "task": mv.task,
        "metric": mv.metric, "score": mv.score, "metrics": mv.metrics,
        "run_id": mv.run_id, "created_at": mv.created_at.isoformat(),
        "files": {p: {"sha256": d, "size": n}
                  for p, (d, n) in _files.manifest(dest / FILES).items()},
    }
    (dest / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return mv


def install_version(catalog: Catalog, folder: Path, *, alias: str | None) -> ModelVersion:
    """Register the bundle in ``folder`` (unless a version with the very same files is
    registered under its name already) and point ``alias`` at it; raises ``IntegrityError``
    when a file differs from ``model.json``."""
    record = _record(folder)
    name = record["name"]
    expected = {p: (f["sha256"], int(f["size"])) for p, f in record["files"].items()}
    _files.verify(folder / FILES, expected,
                  what=f"the bundle of {name}@{record['version']} in {folder}")
    mv = _same_files(catalog, name, expected)
    if mv is None:
        mv = catalog.register_model(
            name, folder / FILES, run_id=None, task=record["task"], metric=record["metric"],
            score=float(record["score"]), metrics=record["metrics"])
    if alias is not None and alias not in mv.aliases:
        catalog.set_alias(name, alias, mv.version)
        mv = catalog.model_version(name, mv.version)
    return mv


def _record(folder: Path) -> dict[str, Any]:
    path = folder / RECORD
    hint = "Pass the model/ folder that 'loopml deploy docker' wrote."
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise RegistryError(f"{folder} holds no {RECORD}: it is not a model bundle.",
                            hint=hint) from None
    except (OSError, ValueError) as exc:
        raise RegistryError(f"Cannot read {path}: {exc}", hint=hint) from None
    keys = ("format", "name", "version", "task", "metric", "score", "metrics", "files")
    missing = [k for k in keys if k not in record]
    if missing or record.get("format") != FORMAT:
        raise RegistryError(
            f"{path} is not a model record this loopml reads (missing: {missing or 'none'}, "
            f"format {record.get('format')!r}, expected {FORMAT}).", hint=hint)
    return record


def _same_files(catalog: Catalog, name: str,
                expected: dict[str, tuple[str, int]]) -> ModelVersion | None:
    """The version of ``name`` registered with exactly these files, if any."""
    if name not in catalog.models():
        return None
    for mv in reversed(catalog.model_versions(name)):
        if catalog.files_of(mv.name, mv.version) == expected:
            return mv
    return None
