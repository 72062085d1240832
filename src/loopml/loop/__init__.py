"""The loop's decisions: which model version is champion.

Feedback intake and retraining policies build on ``decide``.
"""

from loopml.loop._decide import decide

__all__ = ["decide"]
