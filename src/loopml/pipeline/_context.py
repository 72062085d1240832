"""``Context``: what the pipeline's steps need, and nothing about where a project lives.

``Project`` builds one from its folder; a test or another host builds one from a lake, a
catalog and contracts in memory. ``run``, batch scoring, serving, monitoring and the loop take
a ``Context``, never a ``Project``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.core.errors import ConfigError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from loopml.core.config import ProjectConfig
    from loopml.core.contract import Contract
    from loopml.core.records import ModelBundle, ModelVersion
    from loopml.lake import Lake
    from loopml.registry import Catalog


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """Config, lake, catalog and contracts of one project, with verified model loading.

    ``root`` is where relative source paths and reports resolve (a project's folder).

    >>> import tempfile, pathlib
    >>> from loopml.core.config import ProjectConfig
    >>> from loopml.lake import Lake
    >>> from loopml.registry import Catalog
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> cfg = ProjectConfig.from_dict({"name": "m", "sources": [{"name": "s", "path": "s.csv"}],
    ...                                "problem": {"source": "s", "target": "y"}})
    >>> ctx = Context(config=cfg, lake=Lake(d / "lake"),
    ...               catalog=Catalog("sqlite:///c.db", "artifacts", base_dir=d), root=d)
    >>> ctx.model_name, ctx.reports_dir == d / ".loopml/reports"
    ('m', True)
    """

    config: ProjectConfig
    lake: Lake
    catalog: Catalog
    contracts: Mapping[str, Contract] = field(default_factory=dict)  # source name -> contract
    root: Path = field(default_factory=Path.cwd)

    @property
    def model_name(self) -> str:
        return self.config.name

    @property
    def reports_dir(self) -> Path:
        return self.path(self.config.storage.reports_dir)

    def path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.root / p

    def contract(self, source: str | None = None) -> Contract:
        """The contract of a source (default: the problem's source)."""
        name = self.config.source(source).name
        if name not in self.contracts:
            raise ConfigError(
                f"No contract for source {name!r}.",
                hint=f"Write contracts/{name}.yaml ('loopml init' infers one from the data).",
            )
        return self.contracts[name]

    def load(self, ref: str | None = None, *, serving: bool = False
             ) -> tuple[ModelVersion, ModelBundle]:
        """A registered model version and its bundle, after the catalog checked every file's
        sha256 (``NAME@ALIAS`` or ``NAME@N``; default ``serving.model`` or the champion).
        ``serving``: the model in the form registration chose to serve (``serving_bundle``)."""
        from loopml.core.bundle import load_bundle
        from loopml.registry import parse_model_ref

        default = self.config.serving.model or f"{self.model_name}@champion"
        name, which = parse_model_ref(ref or default)
        mv = self.catalog.model_version(name, which)
        folder = self.catalog.fetch(mv.name, mv.version)
        return mv, serving_bundle(folder) if serving else load_bundle(folder)

    def load_version(self, mv: ModelVersion) -> ModelBundle:
        """The verified bundle of one known version."""
        from loopml.core.bundle import load_bundle

        return load_bundle(self.catalog.fetch(mv.name, mv.version))


def serving_bundle(folder: Path) -> ModelBundle:
    """A verified bundle with the model in the form that serves it: the compiled form (JSON
    and arrays: no pickle is loaded) when registration found it equal to the scikit-learn
    model, else the pickle. A compiled form this loopml cannot read falls back to the pickle,
    and the bundle says why."""
    from dataclasses import replace

    from loopml.core.bundle import load_bundle

    compiled, reason = compiled_form(folder)
    if compiled is not None:
        return load_bundle(folder, model=compiled)
    bundle = load_bundle(folder)
    return bundle if reason is None else replace(bundle, serving_reason=reason)


def compiled_form(folder: Path) -> tuple[Any, str | None]:
    """(the compiled form in a bundle ``folder``, None) when registration (or ``loopml.fit``)
    kept one; (None, why) when it kept one this loopml cannot read (e.g. written by a newer
    one: the pickle serves, logged); (None, None) when it kept none."""
    from loopml.core.bundle import COMPILED_DIR, serving_record

    record = serving_record(folder)
    if record is None or record.get("form") != "compiled":
        return None, None
    from loopml.train import CompiledModel

    try:
        return CompiledModel.load(Path(folder) / COMPILED_DIR), None
    except Exception as exc:  # noqa: BLE001 - any unreadable form: the pickle serves
        reason = f"the compiled form could not be read ({type(exc).__name__}: {exc})"
        log.warning("Serving the pickled model from %s: %s", folder, reason)
        return None, reason.splitlines()[0]
