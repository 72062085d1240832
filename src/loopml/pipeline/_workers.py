"""The app of each worker process of ``loopml serve --workers N``.

The parent process binds the port and starts the workers; each one imports this module and
calls ``app()``, which opens the project named by the environment and builds its own app:
its own model (following the alias), its own prediction log writing to the same lake table,
and its logging; the workers share their metrics' counters through a folder. The environment
carries the project file, the model, the log format and that folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENV_PROJECT = "LOOPML_SERVE_PROJECT"  # the project file (loopml.yaml)
ENV_MODEL = "LOOPML_SERVE_MODEL"
ENV_LOG_FORMAT = "LOOPML_SERVE_LOG_FORMAT"
ENV_METRICS = "LOOPML_SERVE_METRICS_DIR"  # where the workers share their counters
_OPEN: list[Any] = []  # the worker's project stays open as long as the process serves


def app() -> Any:
    """The FastAPI app of this worker (a factory: uvicorn calls it once per process)."""
    from loopml.pipeline._project import Project
    from loopml.serve import configure_logs

    configure_logs(os.environ.get(ENV_LOG_FORMAT, "json"))
    project = Project(Path(os.environ[ENV_PROJECT]))
    _OPEN.append(project)
    share = os.environ.get(ENV_METRICS)
    return project.app(model=os.environ.get(ENV_MODEL) or None,
                       metrics_share=Path(share) if share else None)


def worker_environment(project_file: Path, model: str | None, log_format: str,
                       workers: int, *, metrics_share: str = "") -> dict[str, str]:
    """What the workers need in their environment, including their share of the cores for
    OpenMP (when the user has not set it) and the folder where they share their counters."""
    from loopml.core.cpu import available_threads

    env = {ENV_PROJECT: str(project_file), ENV_MODEL: model or "", ENV_LOG_FORMAT: log_format,
           ENV_METRICS: metrics_share}
    if "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, available_threads() // workers))
    return env
