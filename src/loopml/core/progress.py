"""How long steps report progress without knowing who is watching.

Stages call a ``Reporter``; the CLI passes one that draws Rich progress bars, the Python API
passes ``SILENT``.
"""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def start(self, step: str, total: float | None = None) -> None:
        """A step begins; ``total`` is its size in the unit ``advance`` counts (or unknown)."""

    def advance(self, step: str, amount: float = 1.0, *, note: str = "") -> None:
        """Part of the step is done."""

    def finish(self, step: str, *, note: str = "") -> None:
        """The step is over."""


class _Silent:
    def start(self, step: str, total: float | None = None) -> None:
        pass

    def advance(self, step: str, amount: float = 1.0, *, note: str = "") -> None:
        pass

    def finish(self, step: str, *, note: str = "") -> None:
        pass


SILENT: Reporter = _Silent()
