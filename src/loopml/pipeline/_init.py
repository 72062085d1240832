"""Creating a project: the project file and the inferred contract, from a data path."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from loopml.core.config import (
    PROJECT_FILE,
    FileSource,
    ProblemConfig,
    ProjectConfig,
    SqlSource,
)
from loopml.core.contract import PROVENANCE_COLUMNS, Contract
from loopml.core.convert import convert
from loopml.core.errors import ConfigError, TargetError, unknown_name
from loopml.quality import infer_contract
from loopml.sources import read_sample, read_source

MAX_CLASSES = 200
CLASSIFICATION_MAX_INT_VALUES = 20
SQL_SAMPLE_ROWS = 100_000  # rows of a database table read to infer its contract
DATABASE_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb", "sqlite")


def is_database_url(data: str | Path) -> bool:
    """Whether ``loopml init``'s DATA is a database URL rather than a path.

    >>> is_database_url("postgresql://me@db:5432/shop"), is_database_url("data/*.csv")
    (True, False)
    >>> is_database_url("mysql+pymysql://root@127.0.0.1/test")
    True
    """
    text = str(data)
    if "://" not in text:
        return False
    return text.split("://", 1)[0].split("+", 1)[0].lower() in DATABASE_SCHEMES


def create_project(
    data: str | Path,
    *,
    target: str | None,
    task: str = "auto",
    time_column: str | None = None,
    exclude: tuple[str, ...] = (),
    directory: str | Path = ".",
    name: str | None = None,
    source: str | None = None,
    force: bool = False,
    training: dict[str, Any] | None = None,
    table: str | None = None,
    query: str | None = None,
    watermark: str | None = None,
) -> tuple[ProjectConfig, Contract, Path]:
    """Write ``loopml.yaml`` and ``contracts/<source>.yaml`` into ``directory``.

    The data is read once to infer the contract and, with ``task="auto"``, the task. ``data``
    may be a database URL (``postgresql://``, ``mysql://``, ``mariadb://``, ``sqlite:///``)
    with a ``table`` or a ``query`` (and optionally a ``watermark`` column for incremental
    ingests): then a ``kind: sql`` source is written and the contract is inferred from the
    first ``SQL_SAMPLE_ROWS`` rows. Returns the config, the contract and the project file's
    path.

    The columns the leakage checks suspect (``propose_excludes``) join ``exclude`` in
    ``problem.exclude``, each with a comment saying why.
    """
    root = Path(directory).resolve()
    root.mkdir(parents=True, exist_ok=True)
    project_file = root / PROJECT_FILE
    if project_file.exists() and not force:
        raise ConfigError(
            f"{project_file} already exists.",
            hint="Use --force to replace it, or run 'loopml run' to use the existing project.",
        )
    src: FileSource | SqlSource
    if is_database_url(data):
        src = _sql_source(_sqlite_from(str(data), root), source=source, table=table,
                          query=query, watermark=watermark)
        source_name = src.name
        frame = read_sample(src, base_dir=root, rows=SQL_SAMPLE_ROWS)
    else:
        if table is not None or query is not None or watermark is not None:
            raise ConfigError(
                f"--table, --query and --watermark are for database URLs; {data} is a path.",
                hint="Drop them, or pass a URL such as postgresql://USER@HOST:PORT/DB.",
            )
        data_path = _relative(Path(data), root)
        source_name = source or _slug(Path(str(data).split("*")[0]).stem or "data")
        src = FileSource(name=source_name, path=data_path)
        unreadable: list[Any] = []  # ragged lines: the ingest quarantines them with their numbers
        frame = read_source(src, base_dir=root, rejected=unreadable).frame
        bad = sum(part.height for part in unreadable)
        if bad:
            logging.getLogger("loopml").warning(
                "%d line(s) of %s cannot be read (first: %s); the contract is inferred from the "
                "others, and 'loopml run' sets them aside in quarantine with their line numbers.",
                bad, data, unreadable[0]["_reasons"][0])
    columns = [c for c in frame.columns if not c.startswith("_")]

    if task == "clustering" and target is not None:
        raise TargetError(
            "Clustering learns without a target, but --target was given.",
            hint="Drop --target for clustering, or choose --task classification/regression.",
        )
    if target is not None and target not in columns:
        raise TargetError(
            unknown_name("target column", target, columns),
            hint=f"The columns of {data} are listed above; pass one of them as --target.",
        )
    for col in (*exclude, *([time_column] if time_column else [])):
        if col not in columns:
            raise ConfigError(
                unknown_name("column", col, columns),
                hint="--time-column and --exclude take column names of the data.",
            )
    contract = infer_contract(frame, source=source_name, target=target)
    task = _resolve_task(task, contract, target, frame)
    if time_column is not None and contract.column(time_column).type not in (
        "datetime", "date", "integer", "float",
    ):
        raise ConfigError(
            f"The time column {time_column!r} holds {contract.column(time_column).type} "
            "values; it must hold dates, date-times or numbers.",
            hint="Pick a column with timestamps, or convert this one in the data.",
        )

    typed = frame.with_columns(
        convert(frame[spec.name], spec.type) for spec in contract.columns
        if spec.name in frame.columns
    )  # the contract's types, as the ingest will store them
    notes = propose_excludes(typed, target=target, task=task, time_column=time_column,
                             given=exclude)
    config = ProjectConfig(
        name=_slug(name or root.name or source_name),
        sources=(src,),
        problem=ProblemConfig(
            source=source_name,
            target=target,
            task=task,  # type: ignore[arg-type]
            time_column=time_column,
            exclude=(*exclude, *notes),
        ),
        **({"training": training} if training else {}),
    )
    config.save(project_file, notes=notes)
    contract.save(root / "contracts" / f"{source_name}.yaml")
    return config, contract, project_file


def propose_excludes(
    frame: Any, *, target: str | None, task: str, time_column: str | None,
    given: tuple[str, ...] = (),
) -> dict[str, str]:  # fmt: skip
    """The columns to leave out of the features, each with why: the leakage suspects of
    ``loopml.explore.find_leaks`` (a feature that alone predicts the target almost perfectly,
    an id-like column, a value recorded after the time column), less the target, the time
    column and the columns already ``given``. The first reason found for a column is kept.
    Nothing is proposed when it would leave no feature: the suspects are then only reported
    by the profile, and the user decides."""
    from loopml.explore import find_leaks

    found = find_leaks(frame, target=target, task=task, time_column=time_column)
    notes: dict[str, str] = {}
    for suspect in found.suspects:
        if suspect.column in (target, time_column) or suspect.column in given:
            continue
        why = suspect.reason
        notes.setdefault(suspect.column,
                         why if why.startswith(suspect.check) else f"{suspect.check}: {why}")
    left = set(frame.columns) - {target, *given, *notes, *PROVENANCE_COLUMNS}
    return notes if left else {}


def _sqlite_from(url: str, root: Path) -> str:
    """A SQLite URL's file relative to the project (as a file source's path is), so that
    ``loopml init sqlite:///shop.db --dir project`` finds it from the project."""
    head = "sqlite:///"
    if not url.startswith(head):
        return url
    path, sep, options = url[len(head):].partition("?")
    if path in ("", ":memory:") or path.startswith("/") or path.startswith("file:"):
        return url
    return head + _relative(Path(path), root) + sep + options


def _sql_source(
    url: str, *, source: str | None, table: str | None, query: str | None,
    watermark: str | None,
) -> SqlSource:
    """The ``kind: sql`` source of a database URL and a table or query."""
    if (table is None) == (query is None):
        raise ConfigError(
            "A database URL needs exactly one table or query to read; it was given "
            + ("both --table and --query." if table is not None else "neither."),
            hint="Add --table TABLE (or --query 'SELECT ...'), e.g. "
            "loopml init postgresql://USER@HOST:PORT/DB --table orders --target churned.",
        )
    name = source or _slug(table.rsplit(".", 1)[-1] if table else "query")
    return SqlSource(name=name, kind="sql", url=url, table=table, query=query,
                     watermark=watermark)


def _resolve_task(task: str, contract: Contract, target: str | None, frame: Any) -> str:
    if target is None:
        if task not in ("auto", "clustering"):
            raise TargetError(
                f"Task {task} needs a target column.",
                hint="Pass --target COLUMN, or use --task clustering.",
            )
        return "clustering"
    spec = contract.column(target)
    values = frame[target].drop_nulls()
    distinct = values.n_unique()
    if task == "auto":
        if spec.type == "float" or (
            spec.type == "integer" and distinct > CLASSIFICATION_MAX_INT_VALUES
        ):
            task = "regression"
        else:
            task = "classification"
    if task == "regression" and spec.type not in ("integer", "float"):
        examples = ", ".join(repr(v) for v in values.unique().head(3).to_list())
        raise TargetError(
            f"Regression needs a numeric target, but {target!r} holds {spec.type} values "
            f"(e.g. {examples}).",
            hint="Use --task classification for labels, or pick a numeric target column.",
        )
    if task == "classification":
        if distinct < 2:
            raise TargetError(
                f"Classification needs at least two classes; {target!r} has {distinct}.",
                hint="Check the target column, or ingest data with both outcomes.",
            )
        if distinct > MAX_CLASSES:
            raise TargetError(
                f"{target!r} has {distinct} distinct values: too many classes.",
                hint="Use --task regression for a numeric target.",
            )
    return task


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path.resolve())


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_\-]+", "_", text).strip("_-") or "project"
    return slug if slug[0].isalpha() else f"p_{slug}"


CI_WORKFLOW = """\
# Written by 'loopml init --ci'. On every push and pull request: train, evaluate and register
# a model ('loopml run'), then fail the job when it is worse than the champion on the same
# evidence or below the floors in loopml.yaml (loop.floors) ('loopml check').
# To compare against the team's champion rather than a fresh catalog, store the catalog URL
# (PostgreSQL) as the repository secret LOOPML_CATALOG_URL and uncomment the env line below.
name: loopml

on:
  push:
  pull_request:
  workflow_dispatch:

jobs:
  train-and-check:
    runs-on: ubuntu-latest
    timeout-minutes: 60
    env:
      OMP_WAIT_POLICY: PASSIVE
      # LOOPML_STORAGE__CATALOG_URL: ${{{{ secrets.LOOPML_CATALOG_URL }}}}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install loopml
        run: pip install "loopml=={version}"
      - name: Train, evaluate and register
        run: loopml run
      - name: Check the new model against the champion and the floors
        run: loopml check
      - name: Keep the reports
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: loopml-reports
          path: .loopml/reports/
"""


def write_ci_workflow(root: Path, *, force: bool = False) -> Path:
    """Write ``.github/workflows/loopml.yml`` (``loopml run`` then ``loopml check``) under
    ``root``; an existing file is kept unless ``force``."""
    from loopml.core.version import VERSION

    path = root / ".github" / "workflows" / "loopml.yml"
    if path.exists() and not force:
        raise ConfigError(
            f"{path} exists already.",
            hint="Use --force to replace it, or edit it by hand.",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CI_WORKFLOW.format(version=VERSION))
    return path
