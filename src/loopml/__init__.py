"""loopml: the whole machine-learning lifecycle for tabular data as one loop.

>>> import loopml
>>> loopml.LoopmlError.headline
'loopml failed'

The API is ``loopml.Project`` (open or create a project and run every stage),
``loopml.demo`` (build the flights demo), and for a notebook ``loopml.fit`` (the same model
search on a pandas or Polars frame, returning a scikit-learn estimator) and ``loopml.load``
(a model saved with ``model.save``). Heavy libraries load only when a step needs them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# OpenMP learners spin-wait by default, which starves the other process on a small machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from loopml.core.errors import LoopmlError  # noqa: E402
from loopml.core.version import VERSION as __version__  # noqa: E402

__all__ = ["LoopmlError", "Project", "demo", "fit", "load", "__version__"]

if TYPE_CHECKING:
    from loopml.pipeline import Project, demo, fit, load


def __getattr__(name: str) -> Any:
    if name in ("Project", "demo", "fit", "load"):
        import loopml.pipeline as _pipeline

        return getattr(_pipeline, name)
    raise AttributeError(f"module 'loopml' has no attribute {name!r}")
