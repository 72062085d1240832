"""Cleaning while validating: each step with known answers, and each change counted."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from loopml.core.cleaning import CleaningConfig
from loopml.core.config import ProjectConfig
from loopml.core.contract import ColumnSpec, Contract
from loopml.core.errors import ConfigError
from loopml.quality import validate
from loopml.quality._clean import similarity, spellings


def _cleaning(**raw) -> CleaningConfig:
    return CleaningConfig.model_validate(raw)


def _changes(report) -> dict[tuple[str, str, str], tuple[int, tuple]]:
    return {(c.step, c.column, c.action): (c.rows, c.examples) for c in report.cleaning.changes}


def test_numbers_with_separators_and_units_are_repaired_and_counted() -> None:
    """"1,234.5", "12 kg", "€3.50" and "45%" are read as numbers, each repair counted once."""
    contract = Contract(source="s", columns=(ColumnSpec(name="x", type="float"),))
    frame = pl.DataFrame({"x": ["1,234.5", "12 kg", "€3.50", "45%", "7", "1,2"]})
    v = validate(frame, contract, cleaning=_cleaning(repair={"numbers": True}))
    assert v.clean["x"].to_list() == [1234.5, 12.0, 3.5, 45.0, 7.0]
    assert v.quarantined["x"].to_list() == ["1,2"]  # still not a number: quarantined as today
    rows, examples = _changes(v.report)[("repair", "x", "number")]
    assert rows == 4 and ("1,234.5", "1234.5", 1) in examples
    assert v.report.cleaning.by_step() == {"repair": 4}


def test_repair_off_leaves_the_converter_as_it_was() -> None:
    """Without cleaning, "1,234.5" is not a number and there is no cleaning log."""
    contract = Contract(source="s", columns=(ColumnSpec(name="x", type="float"),))
    v = validate(pl.DataFrame({"x": ["1,234.5", "2"]}), contract)
    assert v.clean["x"].to_list() == [2.0] and v.report.cleaning is None


def test_dates_in_configured_formats_and_boolean_words() -> None:
    """A configured date format is tried before the usual ones (03/04 is March 4, not April
    3 as Polars would guess); extra words read as booleans."""
    contract = Contract(source="s", columns=(ColumnSpec(name="d", type="date"),
                                             ColumnSpec(name="b", type="boolean")))
    frame = pl.DataFrame({"d": ["03/04/2024", "2024-01-02"], "b": ["oui", "no"]})
    cleaning = _cleaning(repair={"date_formats": ["%m/%d/%Y"], "true_tokens": ["Oui"]})
    v = validate(frame, contract, cleaning=cleaning)
    assert v.clean["d"].to_list() == [date(2024, 3, 4), date(2024, 1, 2)]
    assert v.clean["b"].to_list() == [True, False]
    changes = _changes(v.report)
    assert changes[("repair", "d", "date")][0] == 1
    assert changes[("repair", "b", "boolean")] == (1, (("oui", "true", 1),))


def test_spellings_merge_into_the_allowed_value_with_counts() -> None:
    """"Paris", " paris", "PARIS", "Pariss" all become the allowed "Paris"; counted by kind."""
    contract = Contract(source="s", columns=(
        ColumnSpec(name="city", type="category", allowed=("Paris", "Lyon")),))
    frame = pl.DataFrame({"city": ["Paris", " paris", "PARIS", "Pariss", "PARIS", "Lyon"]})
    v = validate(frame, contract, drop_duplicates=False,
                 cleaning=_cleaning(categories={"similarity": 0.8}))
    assert v.clean["city"].to_list() == ["Paris"] * 5 + ["Lyon"]
    changes = _changes(v.report)
    assert changes[("categories", "city", "normalise")] == (
        3, (("PARIS", "Paris", 2), (" paris", "Paris", 1)))
    assert changes[("categories", "city", "merge")] == (1, (("Pariss", "Paris", 1),))


def test_without_a_threshold_only_case_space_and_unicode_are_normalised() -> None:
    """Without similarity a misspelling stays (and breaks the allowed list as before)."""
    contract = Contract(source="s", columns=(
        ColumnSpec(name="city", type="category", allowed=("Paris",)),))
    frame = pl.DataFrame({"city": ["ＰＡＲＩＳ", "Pariss"]})
    v = validate(frame, contract, cleaning=_cleaning(categories={}))
    assert v.clean["city"].to_list() == ["Paris"]
    assert v.quarantined["city"].to_list() == ["Pariss"]


def test_without_an_allowed_list_the_most_frequent_spelling_wins() -> None:
    """The batch's most frequent spelling names the category; rarer near-duplicates join it."""
    mapping, merged = spellings({"Lyon": 5, "LYON": 2, "Lyonn": 1, "Nice": 3}, None, 0.75)
    assert mapping == {"LYON": "Lyon", "Lyonn": "Lyon"} and merged == {"Lyonn"}
    # a tie goes to the smallest spelling; inner whitespace is one space
    assert spellings({"a b": 1, "A  B": 1}, None, None)[0] == {"a b": "A B", "A  B": "A B"}


def test_similarity_is_normalised_levenshtein() -> None:
    """1 - edits / longer length; a lower bound only cuts the work, never the answer above it."""
    assert similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert similarity("kitten", "sitting", at_least=0.5) == pytest.approx(1 - 3 / 7)
    assert similarity("kitten", "sitting", at_least=0.9) == 0.0
    assert similarity("", "") == 1.0 and similarity("a", "") == 0.0


def test_missing_drop_sends_rows_to_quarantine_with_a_reason() -> None:
    """A row missing a 'drop' column is quarantined with that reason; none is lost."""
    contract = Contract(source="s", columns=(ColumnSpec(name="id", type="integer"),
                                             ColumnSpec(name="city", type="string")))
    frame = pl.DataFrame({"id": ["1", "2", "x"], "city": ["a", None, None]})
    v = validate(frame, contract, cleaning=_cleaning(missing={"city": "drop"}))
    assert v.clean["id"].to_list() == [1]
    reasons = dict(zip(v.quarantined["id"].to_list(), v.quarantined["_reasons"].to_list()))
    assert reasons["2"] == "city: missing value (cleaning drops such rows)"
    assert reasons["x"].startswith("id: 'x' is not an integer; city: missing value")
    assert v.report.rows_in == v.report.rows_accepted + v.report.rows_quarantined == 3
    assert _changes(v.report)[("missing", "city", "drop")][0] == 2


def test_impute_median_fills_with_the_configured_value() -> None:
    """The fill value is the configured one, not the batch's median; imputed values counted."""
    contract = Contract(source="s", columns=(ColumnSpec(name="x", type="integer"),))
    frame = pl.DataFrame({"x": ["1", None, "100", None]})
    v = validate(frame, contract, drop_duplicates=False,
                 cleaning=_cleaning(missing={"x": {"impute": "median", "value": 7}}))
    assert v.clean["x"].to_list() == [1, 7, 100, 7]
    assert _changes(v.report)[("missing", "x", "impute median")] == (2, (("null", "7", 2),))


def test_clip_sets_values_to_the_iqr_fences() -> None:
    """IQR fences q1 - 1.5 IQR and q3 + 1.5 IQR; values beyond them are clipped and counted."""
    contract = Contract(source="s", columns=(ColumnSpec(name="x", type="float"),))
    frame = pl.DataFrame({"x": [-100.0, 5.0, 15.0, 31.0, None]})
    outliers = {"x": {"method": "iqr", "q1": 10, "q3": 20, "action": "clip"}}
    v = validate(frame, contract, cleaning=_cleaning(outliers=outliers))
    assert v.clean["x"].to_list() == [-5.0, 5.0, 15.0, 31.0, None]
    assert v.report.cleaning.by_step() == {"outliers": 1}
    assert _changes(v.report)[("outliers", "x", "clip iqr")][1] == (("-100.0", "-5.0", 1),)


def test_flag_warns_and_keeps_the_row() -> None:
    """A z-score flag keeps the row, counts it as warned and names the rule."""
    contract = Contract(source="s", columns=(ColumnSpec(name="x", type="integer"),))
    frame = pl.DataFrame({"x": [10, 11, 90]})
    outliers = {"x": {"method": "zscore", "mean": 10, "std": 5, "z": 3}}
    v = validate(frame, contract, cleaning=_cleaning(outliers=outliers))
    assert v.clean["x"].to_list() == [10, 11, 90] and v.report.warned_rows == 1
    [flag] = [x for x in v.report.violations if x.rule == "outlier"]
    assert (flag.column, flag.rows, flag.severity, flag.example) == ("x", 1, "warn", "90")


def test_quarantine_keeps_the_values_as_they_came() -> None:
    """A normalised spelling in a quarantined row shows as it was sent."""
    contract = Contract(source="s", columns=(ColumnSpec(name="city", type="category"),
                                             ColumnSpec(name="n", type="integer")))
    frame = pl.DataFrame({"city": [" PARIS", "Paris", "Paris"], "n": ["x", "1", "2"]})
    v = validate(frame, contract, cleaning=_cleaning(categories={}))
    assert v.quarantined["city"].to_list() == [" PARIS"]


def test_settings_that_do_not_fit_the_contract_are_config_errors() -> None:
    """Unknown columns, statistics of text, outliers of text, a fill of the wrong type."""
    contract = Contract(source="s", columns=(ColumnSpec(name="city", type="string"),
                                             ColumnSpec(name="n", type="integer")))
    frame = pl.DataFrame({"city": ["a"], "n": ["1"]})
    bad = [
        ({"missing": {"cty": "drop"}}, "Did you mean 'city'"),
        ({"missing": {"city": {"impute": "mean", "value": 1}}}, "needs a number column"),
        ({"missing": {"n": {"impute": "constant", "value": "many"}}}, "is not integer"),
        ({"outliers": {"city": {"method": "zscore", "mean": 0, "std": 1}}}, "number columns"),
        ({"categories": {"columns": ["n"]}}, "category and string columns only"),
    ]
    for raw, text in bad:
        with pytest.raises(ConfigError) as info:
            validate(frame, contract, cleaning=_cleaning(**raw))
        assert text in info.value.message and info.value.hint


def test_bad_cleaning_yaml_names_the_key() -> None:
    """A fill without its value, or fences without statistics, fail loading loopml.yaml."""
    def load(cleaning: dict) -> None:
        ProjectConfig.from_dict({"name": "p", "problem": {"source": "s"},
                                 "sources": [{"name": "s", "path": "x.csv",
                                              "cleaning": cleaning}]})

    with pytest.raises(ConfigError) as info:
        load({"missing": {"x": {"impute": "median"}}})
    assert "sources.0.file.cleaning.missing.x" in info.value.message
    assert "needs its 'value'" in info.value.message
    with pytest.raises(ConfigError) as info:
        load({"outliers": {"x": {"method": "iqr", "q1": 1}}})
    assert "missing: q3" in info.value.message
    with pytest.raises(ConfigError):
        load({"repair": {"date_formats": ["dd/mm/yyyy"]}})
    with pytest.raises(ConfigError):
        load({"missing": {"x": "fill"}})


def test_an_allowed_spelling_stays_itself() -> None:
    """Two allowed values equal but for case both stay; other spellings take the first."""
    mapping, _ = spellings({"Paris": 1, "paris": 1, "PARIS": 1}, ("Paris", "paris"), None)
    assert mapping == {"PARIS": "Paris"}
