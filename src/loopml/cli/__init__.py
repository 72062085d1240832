"""The command line: a thin layer over the Python API (``loopml --help``)."""

from loopml.cli._app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
