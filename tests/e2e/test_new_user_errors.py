"""The mistakes a new user makes, through the command line: each is one clear message with
a hint and a non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def assert_clean_failure(code: int, output: str, *needles: str) -> None:
    assert code != 0
    assert "Traceback" not in output
    assert "Error:" in output and "Hint:" in output
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output}"


def test_run_outside_a_project(cli) -> None:
    """'loopml run' in a folder without loopml.yaml explains how to create a project."""
    code, out = cli("run")
    assert_clean_failure(code, out, "No loopml project here", "loopml init")


def test_target_that_does_not_exist(cli, penguins_csv: Path) -> None:
    """A misspelt target lists the closest column names."""
    code, out = cli("init", str(penguins_csv), "--target", "speces")
    assert_clean_failure(code, out, "Unknown target column 'speces'", "Did you mean 'species'")


def test_empty_file(cli, tmp_path: Path) -> None:
    """An empty data file is named, with its size."""
    (tmp_path / "empty.csv").write_text("")
    code, out = cli("init", "empty.csv", "--target", "y")
    assert_clean_failure(code, out, "empty.csv is empty (0 bytes)")


def test_unreadable_file(cli, tmp_path: Path) -> None:
    """A file that is not text at all is refused with a message naming it."""
    (tmp_path / "junk.csv").write_bytes(bytes(range(256)) * 20)
    code, out = cli("init", "junk.csv", "--target", "y")
    assert_clean_failure(code, out, "junk.csv")


def test_file_in_another_encoding_is_read(cli, tmp_path: Path) -> None:
    """A file that is not UTF-8 (here Latin-1) is read as cp1252 rather than refused."""
    (tmp_path / "latin.csv").write_bytes("city,y\nK\xf8benhavn,1\nOslo,0\n".encode("latin-1"))
    code, out = cli("init", "latin.csv", "--target", "y")
    assert code == 0, out


def test_non_numeric_target_for_regression(cli, penguins_csv: Path) -> None:
    """Regression on a text target explains why and suggests classification."""
    code, out = cli("init", str(penguins_csv), "--target", "island", "--task", "regression")
    assert_clean_failure(code, out, "Regression needs a numeric target", "--task classification")


def test_bad_option_value_is_a_usage_error(cli, penguins_csv: Path) -> None:
    """An unknown task is refused by the parser with the valid choices."""
    code, out = cli("init", str(penguins_csv), "--target", "species", "--task", "ranking")
    assert code == 2 and "Traceback" not in out and "classification" in out


def test_contract_violations_do_not_stop_the_run(cli, tmp_path: Path) -> None:
    """Bad rows go to quarantine with reasons while the rest trains (no data lost)."""
    rows = [{"x": str(i), "y": str(i % 2)} for i in range(60)]
    pl.DataFrame(rows).write_csv(tmp_path / "a.csv")
    assert cli("init", "a.csv", "--target", "y")[0] == 0
    with (tmp_path / "a.csv").open("a") as fh:
        fh.write("oops,1\n7,\n")
    code, out = cli("run", "--time-budget", "3")
    assert code == 0, out
    assert "62 rows in, 60 accepted, 2 quarantined" in out
    from loopml.lake import Lake

    q = Lake(tmp_path / ".loopml" / "lake").read("quarantine/a")
    assert sorted(q["_reasons"].to_list()) == ["x: 'oops' is not an integer", "y: missing value"]
