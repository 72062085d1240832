"""The one converter with a ``Repair``: numbers with separators and units, extra date formats
and boolean words, the same through ``convert`` and ``to_type``."""

from __future__ import annotations

import polars as pl
import pytest

from loopml.core.convert import Repair, convert, to_type

TEXTS = ["1,234.5", " 12 kg ", "€3.50", "45%", "USD 3.50", "-$1,000", "1 234 567", "3.5 km/h",
         "1,2", "12 34", "kg", "abc", None, "7", "--5"]


def test_numbers_known_answers() -> None:
    """Each written number is read; what is still ambiguous (1,2 and 12 34) stays null."""
    got = convert(pl.Series("x", TEXTS), "float", Repair(numbers=True)).to_list()
    assert got == [1234.5, 12.0, 3.5, 45.0, 3.5, -1000.0, 1234567.0, 3.5,
                   None, None, None, None, None, 7.0, None]


def test_integers_take_only_whole_repaired_numbers() -> None:
    """An integer column reads "1,234" but not "1,234.5"."""
    got = convert(pl.Series("x", ["1,234", "1,234.5", "12 pcs"]), "integer", Repair(numbers=True))
    assert got.to_list() == [1234, None, 12]


def test_decimal_comma() -> None:
    """With decimal ',' thousands are grouped by '.', and '3,5' is three and a half."""
    got = convert(pl.Series("x", ["1.234,5", "3,5 kg", "1,234.5"]), "float",
                  Repair(numbers=True, decimal=","))
    assert got.to_list() == [1234.5, 3.5, None]


@pytest.mark.parametrize("column_type", ["float", "integer", "boolean", "date", "datetime"])
def test_to_type_agrees_with_convert(column_type: str) -> None:
    """The expression rule and the eager converter give the same values under a repair."""
    repair = Repair(numbers=True, date_formats=("%d.%m.%Y",), true_tokens=("oui",),
                    false_tokens=("non",))
    texts = [*TEXTS, "03.04.2024", "2024-01-02", "oui", "NON", "yes"]
    series = pl.Series("x", texts, dtype=pl.String)
    eager = convert(series, column_type, repair)
    lazy = series.to_frame().select(to_type(pl.col("x"), pl.String, column_type, repair))["x"]
    assert eager.to_list() == lazy.to_list()


def test_without_repair_nothing_changes() -> None:
    """The default converter reads none of the repaired forms."""
    assert convert(pl.Series("x", TEXTS[:8]), "float").null_count() == 8
    assert convert(pl.Series("b", ["oui"]), "boolean").to_list() == [None]
