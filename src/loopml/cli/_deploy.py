"""``loopml deploy ...``: package a model for serving elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from loopml.cli._app import ModelOpt, ProjectOpt, _project, friendly

deploy_app = typer.Typer(
    name="deploy",
    help="Package a model for serving elsewhere: a Docker build context, and the install "
    "step its container runs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@deploy_app.command()
@friendly
def docker(
    model: ModelOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder to write the context to (default: deploy/docker in the project).", show_default=False)] = None,
    image: Annotated[Optional[str], typer.Option(help="Image name and tag (default: loopml-PROJECT:VERSION).", show_default=False)] = None,
    project: ProjectOpt = None,
) -> None:
    """Write a Docker build context that serves the model (default: the champion).

    Dockerfile, compose.yaml (the server with PostgreSQL for the catalog), pinned
    requirements.txt, the project file and contracts, loopml itself, and the model's files
    with their sha256. The container installs the model into its catalog at start and serves
    it; its lake, artifacts and prediction log live on the volume /data.
    """
    from loopml.cli._render import console

    with _project(project) as proj:
        ctx = proj.deploy_docker(out, model=model, image=image)
    mv = ctx.model
    console().print(
        f"Wrote a Docker build context for {mv.name}@{mv.version} ({mv.metric} {mv.score:.4g}) "
        f"to {ctx.folder} ({len(ctx.files)} files).\n"
        f"  docker build -t {ctx.image} {ctx.folder}\n"
        f"  docker run -p 8000:8000 -v loopml-data:/data {ctx.image}\n"
        f"  or, with PostgreSQL for the catalog: cd {ctx.folder} && docker compose up --build")


@deploy_app.command()
@friendly
def install(
    bundle: Annotated[Path, typer.Argument(help="A model bundle: the model/ folder of a deploy context.")],
    alias: Annotated[Optional[str], typer.Option(help="Point this alias at the installed version (e.g. champion).", show_default=False)] = None,
    project: ProjectOpt = None,
) -> None:
    """Register a model bundle in this project's catalog, after checking every file's sha256.

    Installing the same bundle again finds the version already registered (a container runs
    this at every start).
    """
    from loopml.cli._render import console

    with _project(project) as proj:
        mv = proj.install_model(bundle, alias=alias)
    aliases = f" ({', '.join(mv.aliases)})" if mv.aliases else ""
    console().print(f"Installed {mv.name}@{mv.version}{aliases} from {bundle}.")
