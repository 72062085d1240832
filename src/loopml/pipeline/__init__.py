"""Wires the stages into the loop: ``Project`` (init, run, predict, serve, monitor) and the
flights ``demo``."""

from loopml.pipeline._demo import demo
from loopml.pipeline._project import Project

__all__ = ["Project", "demo"]
