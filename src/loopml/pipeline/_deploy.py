"""``loopml deploy docker``: a Docker build context that serves a model version.

The context holds everything the image needs, so ``docker build`` reads nothing else:

- ``Dockerfile``: Python's slim image at this interpreter's version, the pinned
  requirements, loopml's own package, the project file and contracts, and the model bundle.
  The container runs as an unprivileged user, keeps its lake, artifacts and catalog under the
  volume ``/data``, and at each start installs the bundle into its catalog (verifying every
  file's sha256; a second start finds the version already there) and serves it as champion;
- ``compose.yaml``: that server with PostgreSQL for the catalog;
- ``requirements.txt``: every distribution loopml needs, at the versions installed here;
- ``model/``: the version's registered files and ``model.json`` (see ``Catalog.export_model``);
- ``project/``: ``loopml.yaml`` and ``contracts/``; ``loopml/``: the package source.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.core.errors import ConfigError

if TYPE_CHECKING:
    from loopml.core.records import ModelVersion
    from loopml.pipeline._project import Project

PORT = 8000
USER_ID = 10001
DATA = "/data"


@dataclass(frozen=True, slots=True)
class DockerContext:
    folder: Path
    model: ModelVersion
    image: str
    files: tuple[str, ...]  # written, relative to folder


def write_docker_context(project: Project, out: Path, *, model: str | None = None,
                         image: str | None = None) -> DockerContext:
    """Write the build context for ``model`` (default: the project's champion) to ``out``,
    replacing a context written there before."""
    import loopml
    from loopml.registry import parse_model_ref

    name, ref = parse_model_ref(model) if model else (project.model_name, "champion")
    out = Path(out)
    _clear(out)
    mv = project.catalog.export_model(name, ref, out / "model")
    image = image or f"loopml-{project.config.name.lower()}:{mv.version}"
    shutil.copytree(Path(loopml.__file__).parent, out / "loopml",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (out / "project").mkdir()
    shutil.copy2(project.file, out / "project" / "loopml.yaml")
    if (project.root / "contracts").is_dir():
        shutil.copytree(project.root / "contracts", out / "project" / "contracts")
    (out / "requirements.txt").write_text(
        "# Every distribution loopml needs, at the versions it was deployed with.\n"
        + "".join(f"{r}\n" for r in pinned_requirements()))
    (out / "Dockerfile").write_text(dockerfile(mv, image))
    (out / "compose.yaml").write_text(compose(project.config.name, mv, image))
    (out / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n")
    files = tuple(sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()))
    return DockerContext(folder=out, model=mv, image=image, files=files)


def _clear(out: Path) -> None:
    """Make ``out`` empty: a folder this command wrote before is replaced, any other folder
    that holds files is refused."""
    if out.exists() and any(out.iterdir()):
        if not (out / "Dockerfile").exists() or not (out / "model" / "model.json").exists():
            raise ConfigError(
                f"{out} is not empty and is not a context 'loopml deploy docker' wrote.",
                hint="Name an empty or new folder with --out.",
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def pinned_requirements() -> list[str]:
    """``name==version`` for every distribution loopml's install requires, transitively
    (extras and environment markers evaluated as here), sorted; loopml itself excluded."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [("loopml", frozenset())]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        key = (canonicalize_name(name), extras)
        if key in done:
            continue
        done.add(key)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        if key[0] != "loopml":
            pins[key[0]] = f"{dist.metadata['Name']}=={dist.version}"
        for line in dist.requires or []:
            req = Requirement(line)
            wanted = extras or frozenset({""})
            if req.marker is not None and not any(req.marker.evaluate({"extra": e})
                                                  for e in wanted):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return [pins[k] for k in sorted(pins)]


def dockerfile(mv: ModelVersion, image: str) -> str:
    from loopml.core.version import VERSION

    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"""\
# syntax=docker/dockerfile:1
# Serves {mv.name}@{mv.version} ({mv.task}, {mv.metric} {mv.score:.4g}) with loopml {VERSION}.
# Written by 'loopml deploy docker'. Build and run:
#   docker build -t {image} .
#   docker run -p {PORT}:{PORT} -v loopml-data:{DATA} {image}
# or with PostgreSQL for the catalog: docker compose up --build
FROM python:{py}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 OMP_WAIT_POLICY=PASSIVE
# LightGBM and XGBoost need the OpenMP runtime
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \\
    && rm -rf /var/lib/apt/lists/*
WORKDIR /srv
COPY requirements.txt /srv/requirements.txt
RUN pip install -r /srv/requirements.txt
COPY loopml/ /srv/lib/loopml/
COPY project/ /srv/project/
COPY model/ /srv/model/
ENV PYTHONPATH=/srv/lib \\
    LOOPML_STORAGE__LAKE_URI={DATA}/lake \\
    LOOPML_STORAGE__ARTIFACTS_URI={DATA}/artifacts \\
    LOOPML_STORAGE__REPORTS_DIR={DATA}/reports \\
    LOOPML_STORAGE__CATALOG_URL=sqlite:///{DATA}/catalog.db \\
    LOOPML_SERVING__DEAD_LETTER_DIR={DATA}/deadletter \\
    LOOPML_SERVING__MODEL={mv.name}@champion \\
    LOOPML_SERVING__HOST=0.0.0.0 \\
    LOOPML_SERVING__PORT={PORT} \\
    LOOPML_SERVING__LOG_FORMAT=json
RUN useradd --uid {USER_ID} --no-create-home --shell /usr/sbin/nologin loopml \\
    && mkdir -p {DATA} && chown loopml {DATA}
USER {USER_ID}
VOLUME {DATA}
EXPOSE {PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \\
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/ready', timeout=2)"]
ENTRYPOINT ["/bin/sh", "-c", "python -m loopml deploy install /srv/model --project /srv/project --alias champion && exec python -m loopml serve --project /srv/project"]
"""


def compose(project: str, mv: ModelVersion, image: str) -> str:
    slug = project.lower()
    return f"""\
# Written by 'loopml deploy docker': {mv.name}@{mv.version} served with PostgreSQL as catalog.
#   POSTGRES_PASSWORD=... docker compose up --build
# Write endpoints (/feedback, /reload, /promote, /rollback) need a token when
# LOOPML_SERVING__TOKEN is set in the environment compose runs in.
name: loopml-{slug}
services:
  catalog:
    image: postgres:16
    environment:
      POSTGRES_USER: loopml
      POSTGRES_PASSWORD: ${{POSTGRES_PASSWORD:-loopml}}
      POSTGRES_DB: loopml
    volumes:
      - catalog:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U loopml -d loopml"]
      interval: 5s
      timeout: 3s
      retries: 30
  serve:
    build: .
    image: {image}
    depends_on:
      catalog:
        condition: service_healthy
    environment:
      LOOPML_STORAGE__CATALOG_URL: postgresql+psycopg://loopml:${{POSTGRES_PASSWORD:-loopml}}@catalog:5432/loopml
      LOOPML_SERVING__TOKEN: ${{LOOPML_SERVING__TOKEN:-}}
    ports:
      - "{PORT}:{PORT}"
    volumes:
      - data:{DATA}
    stop_grace_period: 30s
    restart: unless-stopped
volumes:
  catalog: {{}}
  data: {{}}
"""
