"""Wires the stages into the loop: ``Project`` (init, run, predict, serve, monitor, loop,
rollback, check), the ``Context`` its steps take, the flights ``demo``, and the notebook API
``fit`` / ``load`` (the same search on a frame in memory, no project folder), and the
leaderboard's rows as text (``LEADERBOARD_COLUMNS``, ``leaderboard_rows``) that the notebook
view and the command line share."""

from loopml.pipeline._context import Context
from loopml.pipeline._demo import demo
from loopml.pipeline._fit import fit, load
from loopml.pipeline._notebook import COLUMNS as LEADERBOARD_COLUMNS
from loopml.pipeline._notebook import candidate_rows as leaderboard_rows
from loopml.pipeline._project import Project

__all__ = ["LEADERBOARD_COLUMNS", "Context", "Project", "demo", "fit", "leaderboard_rows",
           "load"]
