"""``loopml dead-letters ls|replay``: prediction rows a server could not log, and putting them
back once the lake is writable again."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from loopml.cli._app import JsonOpt, ProjectOpt, _project, friendly

dead_letters_app = typer.Typer(
    name="dead-letters",
    help="Prediction rows a server could not write to its log: list them, replay them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@dead_letters_app.command("ls")
@friendly
def dead_letters_ls(as_json: JsonOpt = False, project: ProjectOpt = None) -> None:
    """Per model: rows in its dead-letter file (still to replay, by reason) and table."""
    from loopml.cli._data import _table
    from loopml.cli._render import console, print_json

    with _project(project) as proj:
        found = proj.dead_letters()
    if as_json:
        print_json(found)
        return
    if not found:
        console().print("No dead letters: every served prediction is in its log.")
        return
    rows = []
    for d in found:
        reasons = ", ".join(f"{n:,} {r}" for r, n in d["reasons"].items()) or "-"
        rows.append([d["model"], d["file"] or "-", f"{d['rows']:,}", f"{d['to_replay']:,}",
                     reasons, f"{d['table_rows']:,}"])
    _table("Dead letters", ["model", "file", "rows", "to replay", "by reason",
                            "rows in table"], rows)
    if any(d["to_replay"] for d in found):
        console().print("Once the lake is writable: loopml dead-letters replay")


@dead_letters_app.command("replay")
@friendly
def dead_letters_replay(
    model: Annotated[Optional[str], typer.Argument(help="Only this model (default: every "
                                                   "model).", show_default=False)] = None,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Append the dead-letter files' rows back to the prediction logs.

    Each batch is appended once: a batch the log already holds (replayed before, or its write
    landed after all) is skipped, so running it again appends nothing twice. The files stay;
    remove one once no server writes to it.
    """
    from loopml.cli._render import console, print_json

    with _project(project) as proj:
        done = proj.replay_dead_letters(model)
    if as_json:
        print_json(done)
        return
    if not done:
        console().print("No dead-letter file to replay.")
    for d in done:
        console().print(f"{d['model']}: [bold]{d['appended']:,}[/] row(s) appended to "
                        f"{d['log_table']}, {d['skipped']:,} already there.")
