"""One hierarchy of errors, each saying what was wrong, what was found and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LoopmlError(Exception):
    """Base of every error loopml raises on purpose.

    The CLI prints ``headline``, the message and the ``hint`` and exits non-zero without a
    traceback.
    """

    headline = "loopml failed"
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # the hint travels with the message in logs and tracebacks
        return self.message if not self.hint else f"{self.message}\nHint: {self.hint}"


class ConfigError(LoopmlError, ValueError):
    headline = "The project configuration is not valid"


class NotAProjectError(LoopmlError, FileNotFoundError):
    headline = "No loopml project here"


class SourceError(LoopmlError, OSError):
    headline = "A data source could not be read"


class EmptyDataError(LoopmlError, ValueError):
    headline = "The data is empty"


class SchemaError(LoopmlError, ValueError):
    headline = "Data does not match the schema"


class TargetError(LoopmlError, ValueError):
    headline = "The target column cannot be used"


class LakeError(LoopmlError, OSError):
    headline = "The data lake could not be read or written"


class LakeConflictError(LakeError):
    """The rows do not fit the table's schema: retrying the same write cannot succeed."""

    headline = "The data does not fit the lake table"


class LakeCommittedError(LakeError):
    """The rows were committed, but the table could not be read back afterwards: writing them
    again would store them twice."""

    headline = "The rows were written, but the lake could not be read afterwards"


class LakeCommitUnknownError(LakeError):
    """The commit itself failed, and may have landed all the same (the error came after the
    log entry was written, or the table was moved away meanwhile): look for the commit's
    metadata in the table's history (``Lake.commit_with``) before writing the rows again."""

    headline = "The lake did not say whether the rows were written"


class TrainingError(LoopmlError, RuntimeError):
    headline = "Training failed"


class RegistryError(LoopmlError, LookupError):
    headline = "The model registry could not answer"


class SourceBusyError(RegistryError):
    headline = "The source is being ingested elsewhere"


class IntegrityError(RegistryError):
    headline = "An artifact failed its integrity check"


class ServeError(LoopmlError, RuntimeError):
    headline = "The model server could not start"


class MonitorError(LoopmlError, ValueError):
    headline = "Monitoring could not run"


class FeedbackError(LoopmlError, ValueError):
    headline = "The ground truth could not be taken"


class LoopError(LoopmlError, RuntimeError):
    headline = "The loop could not decide"


class ClusterError(LoopmlError, RuntimeError):
    headline = "The Dask cluster could not run the work"


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's text (backend errors run to pages).

    >>> first_line(ValueError("bad value\\n  at line 3"))
    'bad value'
    """
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0].strip() if lines else type(exc).__name__


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` of ``choices`` that look most like ``name``.

    >>> closest("arr_dlay", ["arr_delay", "dep_delay", "carrier"])
    ['arr_delay', 'dep_delay']
    """
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[f] for f in found]


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> str:
    """Build the message for an unknown name: the valid names and the closest ones.

    >>> unknown_name("column", "agee", ["age", "income"])
    "Unknown column 'agee'. Did you mean 'age'? Valid: 'age', 'income'."
    """
    choices = sorted(choices)
    near = closest(name, choices)
    shown = ", ".join(repr(c) for c in choices[:20]) + (", ..." if len(choices) > 20 else "")
    maybe = f" Did you mean {' or '.join(repr(c) for c in near)}?" if near else ""
    return f"Unknown {kind} {name!r}.{maybe} Valid: {shown}."


class NotCompilable(Exception):
    """A fitted model (or one of its parts) has no compiled form; the message says which part
    and why. Not a user error: the model is then served in its scikit-learn form."""
