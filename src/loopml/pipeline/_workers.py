"""The app of each worker process of ``loopml serve --workers N``.

The parent process binds the port and starts the workers; each one imports this module and
calls ``app()``, which opens the project named by the environment and builds its own app:
its own model (following the alias), its own prediction log writing to the same lake table,
and its logging. The environment carries the project file, the model and the log format.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENV_PROJECT = "LOOPML_SERVE_PROJECT"  # the project file (loopml.yaml)
ENV_MODEL = "LOOPML_SERVE_MODEL"
ENV_LOG_FORMAT = "LOOPML_SERVE_LOG_FORMAT"
_OPEN: list[Any] = []  # the worker's project stays open as long as the process serves


def app() -> Any:
    """The FastAPI app of this worker (a factory: uvicorn calls it once per process)."""
    from loopml.pipeline._project import Project
    from loopml.serve import configure_logs

    configure_logs(os.environ.get(ENV_LOG_FORMAT, "json"))
    project = Project(Path(os.environ[ENV_PROJECT]))
    _OPEN.append(project)
    return project.app(model=os.environ.get(ENV_MODEL) or None)


def worker_environment(project_file: Path, model: str | None, log_format: str,
                       workers: int) -> dict[str, str]:
    """What the workers need in their environment, including their share of the cores for
    OpenMP (when the user has not set it)."""
    from loopml.core.cpu import available_threads

    env = {ENV_PROJECT: str(project_file), ENV_MODEL: model or "", ENV_LOG_FORMAT: log_format}
    if "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, available_threads() // workers))
    return env
