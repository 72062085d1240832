"""Dead letters of the prediction log: what is waiting, and putting it back.

A server whose lake could not be written kept the prediction rows in a dead-letter file
(``serving.dead_letter_dir``), and rows whose types the log table refused in the lake table
``deadletter/predictions/<model>``. ``dead_letters`` says what each model has there;
``replay_dead_letters`` appends the file's rows back to the prediction log once the lake is
back, each batch once (a batch the table already holds is skipped), and records an event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.core.errors import ConfigError
from loopml.lake import table_name

if TYPE_CHECKING:
    from pathlib import Path

    from loopml.pipeline._context import Context


def dead_letters(ctx: Context) -> list[dict[str, Any]]:
    """Per model with dead letters: ``model``, ``log_table``, ``file`` (its path, or None)
    with the file's counts (``rows``, ``batches``, ``in_table``, ``to_replay``, ``reasons``,
    ``last``) and ``table_rows`` (rows in the lake's dead-letter table)."""
    from loopml.serve import dead_letter_file_status

    out = []
    for model, log_table, path, letters in _places(ctx):
        found = path.exists()
        rows = ctx.lake.rows(letters) if ctx.lake.exists(letters) else 0
        if not found and not rows:
            continue
        status = (dead_letter_file_status(ctx.lake, path, log_table) if found else
                  {"rows": 0, "batches": 0, "in_table": 0, "to_replay": 0, "reasons": {},
                   "last": None})
        out.append({"model": model, "log_table": log_table,
                    "file": str(path) if found else None, **status,
                    "dead_letter_table": letters, "table_rows": rows})
    return out


def replay_dead_letters(ctx: Context, model: str | None = None) -> list[dict[str, Any]]:
    """Append each model's dead-letter file (or only ``model``'s) back to its prediction log:
    per model, rows ``appended`` and ``skipped`` (already in the table). The files stay: run
    it again and nothing is appended twice; remove a file once no server writes to it."""
    from loopml.serve import replay_dead_letter_file

    places = [p for p in _places(ctx) if model is None or p[0] == model]
    if model is not None and not places:
        raise ConfigError(f"No model named {model!r} is registered.",
                          hint="See 'loopml models' for the names.")
    out = []
    for name, log_table, path, _ in places:
        if not path.exists():
            continue
        appended, skipped = replay_dead_letter_file(ctx.lake, path, log_table)
        counts = {"model": name, "file": str(path), "log_table": log_table,
                  "appended": appended, "skipped": skipped}
        ctx.catalog.log_event("dead_letter_replay", name, counts)
        out.append(counts)
    return out


def _places(ctx: Context) -> list[tuple[str, str, Path, str]]:
    """Per registered model: (name, its prediction log table, its dead-letter file, its
    dead-letter table)."""
    from loopml.serve import dead_letter_path

    folder = ctx.path(ctx.config.serving.dead_letter_dir)
    out = []
    for model in ctx.catalog.models():
        log_table = table_name("predictions", model)
        letters = table_name("deadletter", log_table)
        out.append((model, log_table, dead_letter_path(folder, letters), letters))
    return out
