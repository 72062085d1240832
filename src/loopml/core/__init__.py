"""What every stage shares: configuration, records, the contract, errors and progress.

Stages import from the submodules (``loopml.core.records`` ...); nothing here is heavy.
"""

from loopml.core.errors import LoopmlError

__all__ = ["LoopmlError"]
