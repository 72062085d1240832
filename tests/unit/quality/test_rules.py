"""The contract's rules with known answers: null rates, open categories, patterns, uniqueness,
keys, rules over several columns, severities, the quality score and ``check_contract``."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from loopml.core.contract import ColumnSpec, Contract, Rule
from loopml.core.errors import SchemaError
from loopml.quality import check_contract, infer_contract, validate


def _contract(*columns: ColumnSpec, key: tuple[str, ...] = (), rules: tuple[Rule, ...] = ()
              ) -> Contract:
    return Contract(source="s", columns=columns, key=key, rules=rules)


def _violation(report, rule: str):
    [found] = [v for v in report.violations if v.rule == rule]
    return found


def test_null_rate_above_the_bound_warns_by_default_and_quarantines_as_an_error() -> None:
    """200 rows, 60 nulls (30%) against max_null_rate 0.1: a warning that keeps every row,
    or with severity error the 60 null rows quarantined with the rate in their reason."""
    frame = pl.DataFrame({"id": [str(i) for i in range(200)],
                          "x": [None if i % 10 < 3 else "1.5" for i in range(200)]})
    spec = ColumnSpec(name="x", type="float", max_null_rate=0.1)
    ids = ColumnSpec(name="id", type="integer", nullable=False)
    warned = validate(frame, _contract(ids, spec)).report
    assert (warned.rows_accepted, warned.rows_quarantined, warned.warned_rows) == (200, 0, 60)
    v = _violation(warned, "max_null_rate")
    assert (v.column, v.rows, v.severity) == ("x", 60, "warn")
    assert warned.quality_score == 85.0  # (200 - 0 - 60 / 2) / 200

    strict = ColumnSpec(name="x", type="float", max_null_rate=0.1,
                        severity=(("max_null_rate", "error"),))
    out = validate(frame, _contract(ids, strict))
    assert out.report.rows_quarantined == 60 and out.report.quality_score == 70.0
    assert set(out.quarantined["_reasons"]) == {
        "x: missing value (the batch has 30.0% nulls, above the contract's max_null_rate 10.0%)"}
    # within the bound, or a batch too small to tell: no violation
    assert validate(frame.head(50), _contract(ids, strict)).report.rows_quarantined == 0
    assert validate(frame, _contract(ids, ColumnSpec(name="x", type="float",
                                                     max_null_rate=0.3))).report.violations == ()


def test_an_open_category_warns_where_a_closed_one_quarantines() -> None:
    frame = pl.DataFrame({"city": ["Oslo", "Bergen", "Atlantis", "Oslo "]})
    closed = ColumnSpec(name="city", type="category", allowed=("Bergen", "Oslo"))
    out = validate(frame, _contract(closed), drop_duplicates=False)
    assert out.quarantined["_reasons"].to_list() == ["city: 'Atlantis' is not an allowed category"]
    opened = validate(frame, _contract(ColumnSpec(name="city", type="category",
                                                  allowed=("Bergen", "Oslo"), open=True)),
                      drop_duplicates=False)
    assert opened.report.rows_quarantined == 0 and opened.report.warned_rows == 1
    assert _violation(opened.report, "allowed").severity == "warn"
    assert _violation(opened.report, "allowed").example == "Atlantis"


def test_a_pattern_matches_the_whole_value() -> None:
    frame = pl.DataFrame({"code": ["AB12", "xAB12", "AB12x", "ab12", None]})
    spec = ColumnSpec(name="code", type="string", pattern=r"[A-Z]{2}\d+")
    out = validate(frame, _contract(spec))
    assert out.clean["code"].to_list() == ["AB12", None]
    assert out.quarantined["_reasons"].to_list() == [
        rf"code: '{v}' does not match the pattern [A-Z]{{2}}\d+"
        for v in ("xAB12", "AB12x", "ab12")]


def test_unique_columns_and_keys_quarantine_later_repeats_of_a_batch() -> None:
    frame = pl.DataFrame({"id": ["1", "2", "1", None, None], "a": ["x", "y", "z", "x", "x"],
                          "b": ["1", "1", "2", "1", "1"]})
    contract = _contract(ColumnSpec(name="id", type="integer", unique=True),
                         ColumnSpec(name="a", type="string"),
                         ColumnSpec(name="b", type="integer"), key=("a", "b"))
    out = validate(frame, contract, drop_duplicates=False)
    reasons = dict(zip(out.quarantined["id"].to_list(), out.quarantined["_reasons"].to_list(),
                       strict=True))
    assert out.report.rows_quarantined == 3
    assert reasons["1"] == "id: 1 is not unique (an earlier row has it)"
    # rows 4 and 5 repeat row 1's key (x, 1); nulls in a unique column are no repeat
    assert reasons[None] == "key (a, b): (x, 1) is not unique (an earlier row has it)"
    # rows that are not one batch (requests to score) are not judged as one
    assert validate(frame, contract, drop_duplicates=False,
                    batch_rules=False).report.rows_quarantined == 0


def test_rules_over_several_columns_fail_only_where_false() -> None:
    """A rule quarantines the rows that make it false (a null makes it unknown: passes) and
    shows their values; a row breaking two rules carries both reasons."""
    frame = pl.DataFrame({"dep": ["10", "20", "30", None], "arr": ["15", "5", "-1", "7"]})
    contract = _contract(
        ColumnSpec(name="dep", type="integer"),
        ColumnSpec(name="arr", type="integer", min=0),
        rules=(Rule(name="ordered", check="arr >= dep"),
               Rule(name="short", check="arr - dep < 100", severity="warn")),
    )
    out = validate(frame, contract)
    assert out.clean["dep"].to_list() == [10, None]
    assert out.quarantined["_reasons"].to_list() == [
        "rule ordered: arr >= dep is false (arr=5, dep=20)",
        "arr: -1 is below the minimum 0; rule ordered: arr >= dep is false (arr=-1, dep=30)",
    ]
    assert _violation(out.report, "ordered").rows == 2
    assert not [v for v in out.report.violations if v.rule == "short"]


def test_a_warn_rule_keeps_the_row_and_is_counted() -> None:
    frame = pl.DataFrame({"lo": ["1", "5"], "hi": ["2", "3"]})
    contract = _contract(ColumnSpec(name="lo", type="integer"),
                         ColumnSpec(name="hi", type="integer"),
                         rules=(Rule(name="range", check="hi > lo", severity="warn"),))
    out = validate(frame, contract)
    assert out.report.rows_accepted == 2 and out.report.warned_rows == 1
    assert _violation(out.report, "range").example == "hi=3, lo=5"


def test_a_rule_polars_cannot_evaluate_is_a_schema_error() -> None:
    frame = pl.DataFrame({"d": ["2024-01-01"]})
    contract = _contract(ColumnSpec(name="d", type="date"),
                         rules=(Rule(name="recent", check="d >= '2020-01-01'"),))
    with pytest.raises(SchemaError, match="recent"):
        validate(frame, contract)
    with pytest.raises(SchemaError, match="does not list"):
        validate(frame, _contract(ColumnSpec(name="d", type="date"),
                                  rules=(Rule(name="r", check="e > 1"),)))


def test_new_keys_round_trip_and_old_contracts_keep_their_fingerprint() -> None:
    old = {"format_version": 1, "source": "s",
           "columns": [{"name": "a", "type": "integer", "nullable": True, "min": 0, "max": 10}]}
    assert Contract.from_dict(old).to_dict() == old  # no new key appears: same fingerprint
    full = _contract(
        ColumnSpec(name="a", type="integer", max_null_rate=0.2, min=0, max=10, unique=True,
                   severity=(("max", "warn"),)),
        ColumnSpec(name="c", type="category", allowed=("no", "yes"), frequencies=(0.25, 0.75),
                   open=True, pattern="[a-z]+"),
        key=("a", "c"), rules=(Rule(name="r", check="a > 0", severity="warn"),),
    )
    again = Contract.from_yaml(full.to_yaml())
    assert again == full and again.fingerprint() == full.fingerprint()
    assert again.column("a").severity_of("max") == "warn"
    assert again.column("a").severity_of("min") == "error"
    assert again.column("c").severity_of("allowed") == "warn"  # open
    assert Contract.from_dict(old).column("a").severity_of("max_null_rate") == "warn"


def test_inferred_contract_bounds_null_rates_and_keeps_category_shares(
        flights_sample: pl.DataFrame) -> None:
    """On real flights: cancelled flights have no dep_time (about 2-3% of rows): the bound
    lets a batch hold somewhat more; carriers come with the share of flights each had."""
    text = flights_sample.cast({c: pl.String for c in flights_sample.columns})
    c = infer_contract(text, source="flights", target="delayed")
    rate = flights_sample["dep_time"].null_count() / flights_sample.height
    assert 0 < rate < c.column("dep_time").max_null_rate <= rate + 0.06
    assert c.column("year").max_null_rate is None  # never missing: not nullable
    carrier = c.column("carrier")
    shares = dict(zip(carrier.allowed, carrier.frequencies, strict=True))
    ua = (flights_sample["carrier"] == "UA").mean()
    assert shares["UA"] == pytest.approx(ua, abs=1e-4)
    assert sum(carrier.frequencies) == pytest.approx(1, abs=1e-3)
    # and the flights validate against it: the bound is not hit by the data it came from
    assert validate(text, c).report.warned_rows == 0


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_check_contract_explains_every_mistake(tmp_path: Path) -> None:
    path = _write(tmp_path, """source: s
columns:
- {name: id, type: integer, min: 5, max: 1}
- {name: city, type: category, allowed: [a, b], severity: {allowed: fatal}}
- {name: when, type: date, min: 0}
- {name: amt, type: float, nullable: false, max_null_rate: 0.2, pattern: '(['}
rules:
- {name: r1, check: "amt >= "}
- {name: r2, check: "amt + 1"}
- {name: r3, check: "zzz > 1"}
- {name: r4, check: "when >= '2020-01-01'"}
""")
    problems = check_contract(path)
    assert len(problems) == 9, problems
    text = "\n".join(problems)
    for expected in ("min 5.0 above max 1.0", "severity 'fatal'",
                     "min and max apply to integer and float columns, not date",
                     "nullable is false but max_null_rate is 0.2",
                     "pattern '([' is not a valid regular expression (unclosed character class)",
                     "rule 'r1': Rule 'r1': cannot read its check",
                     "'amt + 1' gives Float64, not true or false",
                     "rule 'r3' reads ['zzz']", "rule 'r4': \"when >= '2020-01-01'\" cannot be"):
        assert expected in text


def test_check_contract_on_sound_files_and_broken_yaml(tmp_path: Path) -> None:
    sound = _contract(ColumnSpec(name="a", type="integer"), ColumnSpec(name="b", type="date"),
                      rules=(Rule(name="r", check="a BETWEEN 1 AND 5"),))
    assert check_contract(sound.save(tmp_path / "ok.yaml")) == []
    assert check_contract(_write(tmp_path, "source: s\ncolumns:\n- {name: a, type: integer\n")
                          ) == ["not valid YAML at line 4, column 1: expected ',' or '}', but "
                                "got '<stream end>'."]
    assert "does not exist" in check_contract(tmp_path / "nope.yaml")[0]


def test_contract_check_command(cli, tmp_path: Path) -> None:
    good = _contract(ColumnSpec(name="a", type="integer")).save(tmp_path / "good.yaml")
    code, out = cli("contract", "check", str(good))
    assert code == 0 and "no problems" in out
    bad = _write(tmp_path, "source: s\ncolumns:\n- {name: a, type: strin}\n")
    code, out = cli("contract", "check", str(bad), "--json")
    assert code == 1
    assert "unknown type 'strin'" in out


def test_a_monitored_window_is_validated_like_an_ingested_batch() -> None:
    """The served rows of a window go through the same validation: values the server scored
    but the contract's bounds or categories do not hold lower the quality score, warn, and
    reach the monitoring history."""
    from types import SimpleNamespace

    from loopml.core.records import WindowReport
    from loopml.monitor import history_rows
    from loopml.pipeline._loop import with_quality

    contract = _contract(ColumnSpec(name="x", type="float", min=0, max=10),
                         ColumnSpec(name="c", type="category", allowed=("a", "b"), open=True),
                         ColumnSpec(name="y", type="category", allowed=("no", "yes")))
    bundle = SimpleNamespace(feature_columns=("x", "c"), contract=contract)
    window = pl.DataFrame({"x": [1.0, 50.0, 2.0, 3.0], "c": ["a", "b", "z", "a"],
                           "_prediction": ["no"] * 4})
    report = WindowReport(model="m", version=1, start=None, end=None, rows=4, drift=None)
    judged = with_quality(report, window, bundle)
    assert judged.quality_score == 62.5  # (4 - 1 - 1 / 2) / 4
    assert judged.status == "warn" and "1 row(s) break the contract: x max (1)" in judged.reasons
    assert {(v.column, v.rule, v.severity) for v in judged.quality} == {
        ("x", "max", "error"), ("c", "allowed", "warn")}
    history = {(r[0], r[1]): r[2] for r in
               history_rows(judged).select("column", "statistic", "value").rows()}
    assert history[("_quality", "score")] == 62.5 and history[("x", "contract_max")] == 1.0
    clean = with_quality(report, window.filter(pl.col("x") < 10), bundle)
    assert clean.status == "ok" and clean.quality_score == 83.33
