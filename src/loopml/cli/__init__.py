"""The command line: a thin layer over the Python API."""


def main() -> None:
    from loopml.cli._app import run

    run()
