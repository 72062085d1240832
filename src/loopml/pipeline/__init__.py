"""Wires the stages into the loop: ``Project`` (init, run, predict, serve, monitor, loop,
rollback, check), the ``Context`` its steps take, and the flights ``demo``."""

from loopml.pipeline._context import Context
from loopml.pipeline._demo import demo
from loopml.pipeline._project import Project

__all__ = ["Context", "Project", "demo"]
