"""The command line's surface: fast start, the documented commands, readable failures."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from loopml.cli import app

HEAVY = ("polars", "sklearn", "lightgbm", "xgboost", "pandas", "numpy", "deltalake",
         "sqlalchemy", "fastapi", "plotly", "pydantic", "optuna", "pyarrow")  # fmt: skip


def test_help_imports_no_heavy_library() -> None:
    """'loopml --help' loads none of the data, learning or serving libraries."""
    code = (
        "import sys; from loopml.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_help_lists_every_command() -> None:
    """The help names each command of the README."""
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "run", "serve", "predict", "models", "promote", "monitor", "demo"):
        assert f"  {command} " in result.output


def test_python_api_mirrors_the_cli() -> None:
    """The package exposes Project and demo without importing them eagerly."""
    code = "import sys, loopml; print('loopml.pipeline' in sys.modules, callable(loopml.demo))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
