"""The loop's policy and decisions, without I/O: which signals start a retraining
(``triggers``), champion and challenger on the same rows with a paired bootstrap interval
(``compare``), and whether the challenger replaces the champion (``decide``).

The pipeline gathers the signals and the evidence, and acts on the decision.
"""

from loopml.loop._compare import compare
from loopml.loop._decide import decide
from loopml.loop._triggers import triggers

__all__ = ["compare", "decide", "triggers"]
