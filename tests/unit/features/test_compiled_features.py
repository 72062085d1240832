"""The compiled feature pipeline gives exactly the ColumnTransformer's numbers."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from loopml.core.contract import ColumnSpec, Contract, polars_schema
from loopml.core.errors import NotCompilable
from loopml.features import FeaturePlan, build_features, compile_features
from loopml.quality import infer_contract, validate

TYPES = {
    "i": "integer", "x": "float", "empty": "float", "b": "boolean", "k": "category",
    "big": "category", "s": "string", "t": "datetime", "d": "date",
}
CONTRACT = Contract(
    source="gen", columns=tuple(ColumnSpec(name=n, type=t) for n, t in TYPES.items())
)
SCHEMA = polars_schema(CONTRACT, list(TYPES))


def _with_nulls(rng: np.random.Generator, values: list, share: float = 0.1) -> list:
    return [None if rng.random() < share else v for v in values]


def generated(n: int, seed: int, *, fit: bool = True) -> pl.DataFrame:
    """Every contract type with nulls; in fit, 'empty' is all null, 'k' has rare categories
    and 'big' 300 categories; new rows (fit=False) bring categories never seen."""
    rng = np.random.default_rng(seed)
    k_pool = [f"k{i}" for i in range(8)] + [f"rare{i}" for i in range(6)]
    k_p = np.r_[np.full(8, 0.12), np.full(6, 0.008 / 6)]
    k = list(rng.choice(k_pool, size=n, p=k_p / k_p.sum()))
    big = [f"B{v}" for v in rng.integers(0, 300 if fit else 330, n)]
    s = [f"id{v}" for v in rng.integers(0, 400 if fit else 450, n)]
    if not fit:
        k[:3] = ["never", "seen", "k0"]
    ticks = rng.integers(-3 * 10**15, 3 * 10**15, n)  # microseconds: 1875 to 2065
    return pl.DataFrame({
        "i": _with_nulls(rng, [int(v) for v in rng.integers(-10**6, 10**6, n)]),
        "x": _with_nulls(rng, list(rng.normal(3.0, 2.0, n))),
        "empty": [None] * n if fit else _with_nulls(rng, list(rng.normal(size=n)), 0.5),
        "b": _with_nulls(rng, [bool(v) for v in rng.integers(0, 2, n)]),
        "k": _with_nulls(rng, k),
        "big": _with_nulls(rng, big, 0.05),
        "s": _with_nulls(rng, s, 0.05),
        "t": _with_nulls(rng, [datetime.fromtimestamp(v / 1e6, UTC) for v in ticks.tolist()]),
        "d": _with_nulls(rng, [date.fromordinal(v) for v in rng.integers(6 * 10**5, 8 * 10**5, n)
                               .tolist()]),
    }, schema=SCHEMA)


def target(task: str, n: int, seed: int) -> np.ndarray | None:
    rng = np.random.default_rng(seed)
    return {"regression": rng.normal(size=n), "binary": rng.integers(0, 2, n),
            "multiclass": rng.integers(0, 3, n), "clustering": None}[task]


def fitted(frame: pl.DataFrame, y: np.ndarray | None, task: str, view: str) -> object:
    build_task = {"binary": "classification", "multiclass": "classification"}.get(task, task)
    ct = build_features(CONTRACT, columns=list(TYPES), task=build_task, view=view)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SimpleImputer skips the all-missing column
        return ct.fit(frame, y)


def roundtrip(plan: FeaturePlan, tmp_path: Path, prefix: str = "features.") -> FeaturePlan:
    """The plan through json.dumps/loads and np.savez/np.load(allow_pickle=False)."""
    arrays: dict[str, np.ndarray] = {"other.x": np.zeros(2)}
    text = json.dumps(plan.to_spec(arrays, prefix))
    assert all(k.startswith(prefix) for k in arrays if k != "other.x")
    np.savez(tmp_path / "plan.npz", **arrays)
    with np.load(tmp_path / "plan.npz", allow_pickle=False) as loaded:
        stored = {k: loaded[k] for k in loaded.files}
    return FeaturePlan.from_spec(json.loads(text), stored)


def assert_same(plan: FeaturePlan, ct: object, frame: pl.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = np.asarray(ct.transform(frame), dtype=np.float64)
    got = plan.transform(frame)
    assert got.dtype == np.float64 and got.flags.c_contiguous and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def all_null(rows: int) -> pl.DataFrame:
    return pl.DataFrame({n: [None] * rows for n in TYPES}, schema=SCHEMA)


@pytest.mark.parametrize("view", ["dense", "tree"])
@pytest.mark.parametrize("task", ["regression", "binary", "multiclass", "clustering"])
def test_generated_data_every_type(task: str, view: str, tmp_path: Path) -> None:
    """Training rows, new rows (unseen categories, values where fit had none), single rows
    and all-null rows give the ColumnTransformer's numbers, also after a JSON + npz round trip."""
    train = generated(1500, 1)
    ct = fitted(train, target(task, 1500, 2), task, view)
    plan = compile_features(ct)
    again = roundtrip(plan, tmp_path)
    new = generated(300, 3, fit=False)
    for p in (plan, again):
        for frame in (train, new, new[:1], new[7:8], new[:20], all_null(1), all_null(40),
                      train.with_columns(pl.lit(None, dtype=pl.String).alias("k"))):
            assert_same(p, ct, frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = list(ct.get_feature_names_out())
    assert plan.width == len(names)
    if view == "dense":
        assert "category__k_infrequent_sklearn" in names  # rare categories share a column
    else:
        big = ct.named_transformers_["category"][-1]
        assert big.infrequent_categories_[1] is not None  # 300 > 255 categories share a code


@pytest.mark.parametrize("view", ["dense", "tree"])
def test_flights_every_row_and_single_rows(flights_sample: pl.DataFrame, view: str,
                                           tmp_path: Path) -> None:
    """Real data: flights through the validated contract, fitted as training fits it."""
    text = flights_sample.filter(pl.col("delayed").is_not_null()).cast(
        {c: pl.String for c in flights_sample.columns}
    )
    contract = infer_contract(text, source="flights", target="delayed")
    frame = validate(text, contract).clean
    columns = ["month", "sched_dep_time", "carrier", "tailnum", "origin", "distance",
               "time_hour", "dep_delay", "air_time"]
    ct = build_features(contract, columns=columns, task="classification", view=view)
    X = frame.select(columns)
    ct.fit(X[:3000], frame["delayed"].to_numpy()[:3000])
    plan = roundtrip(compile_features(ct), tmp_path)
    assert_same(plan, ct, X)
    for i in (0, 3001, X.height - 1):
        assert_same(plan, ct, X[i:i + 1])
    odd = pl.DataFrame({
        "month": [7], "sched_dep_time": [None], "carrier": ["ZZ"], "tailnum": [None],
        "origin": ["JFK"], "distance": [None], "time_hour": [datetime(2013, 7, 1, 9, tzinfo=UTC)],
        "dep_delay": [None], "air_time": [None],
    }, schema=X.schema)
    assert_same(plan, ct, odd)


def test_date_parts_of_text_other_zones_and_far_dates() -> None:
    """DateParts on text (parsed by the contract's converter), on another time zone and on
    dates far from 1970 gives Polars' numbers."""
    from sklearn.compose import ColumnTransformer

    from loopml.features._transformers import DateParts

    rng = np.random.default_rng(5)
    ticks = rng.integers(-6 * 10**16, 6 * 10**16, 2000)  # about year 70 to 3870
    far = pl.Series("far", ticks, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
    frame = pl.DataFrame({
        "far": far,
        "text": _with_nulls(rng, ["2024-01-01T12:00:00+02:00", "2013-07-01 09:00", "no",
                                  "2020/02/29", " 1999-12-31 "] * 400),
        "paris": far.dt.convert_time_zone("Europe/Paris"),
        "ms": far.cast(pl.Datetime("ms")),
        "day": far.dt.date(),
    })
    ct = ColumnTransformer([
        ("dt", DateParts(with_time=True), ["far", "text", "paris", "ms"]),
        ("date", DateParts(with_time=False), ["day"]),
    ]).fit(frame)
    plan = compile_features(ct)
    assert_same(plan, ct, frame)
    assert_same(plan, ct, frame[3:4])


def test_unsupported_parts_raise_not_compilable() -> None:
    """A transformer the plan cannot reproduce is refused by name, never approximated."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    from loopml.features._transformers import ToFloat

    frame = pl.DataFrame({"x": [1.0, 2.0, None], "y": [1, 2, 3]})
    ct = ColumnTransformer([("numeric", make_pipeline(ToFloat(), MinMaxScaler()), ["x"])])
    with pytest.raises(NotCompilable, match="'numeric'.*MinMaxScaler"):
        compile_features(ct.fit(frame))
    kept = ColumnTransformer([("numeric", ToFloat(), ["x"])], remainder="passthrough")
    with pytest.raises(NotCompilable, match="'remainder'"):
        compile_features(kept.fit(frame))
    with pytest.raises(NotCompilable, match="fitted ColumnTransformer"):
        compile_features(ColumnTransformer([("numeric", ToFloat(), ["x"])]))


def test_other_imputer_scaler_and_encoder_settings(tmp_path: Path) -> None:
    """Mean imputation keeping empty features, scaling without centring, one-hot ignoring
    unknowns and an ordinal code of -1 for them compile as well."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    from loopml.features._transformers import ToFloat, ToText

    train, new = generated(400, 7), generated(50, 8, fit=False)
    ct = ColumnTransformer([
        ("mean", make_pipeline(ToFloat(), SimpleImputer(strategy="mean", add_indicator=True,
                                                        keep_empty_features=True),
                               StandardScaler(with_mean=False)), ["x", "empty", "b"]),
        ("onehot", make_pipeline(ToText(), OneHotEncoder(handle_unknown="ignore",
                                                         sparse_output=False)), ["k", "b"]),
        ("ordinal", make_pipeline(ToText(), OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1)), ["k"]),
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ct.fit(train)
    plan = roundtrip(compile_features(ct), tmp_path)
    for frame in (train, new, new[:1], all_null(3)):
        assert_same(plan, ct, frame)


@pytest.mark.parametrize("view", ["dense", "tree"])
def test_one_record_paths_give_the_batch_numbers(view: str) -> None:
    """One record at a time, read from a frame, from shared Columns or from Python values
    (as a request's records), gives the numbers of the batch path, nulls and unseen
    categories included; several plans sharing one Columns each get their own."""
    from loopml.features import Columns, tree_features

    make = tree_features if view == "tree" else build_features
    fit = generated(400, seed=7)
    plans = [compile_features(make(CONTRACT, columns=list(TYPES), task="regression")
                              .fit(fit[i::2], target("regression", 400, i)[i::2]))
             for i in range(2)]
    new = generated(120, seed=8, fit=False)
    batches = [plan.transform(pl.concat([new] * 1)) for plan in plans]
    assert new.height > 32  # the batch above took the large path
    for r in range(new.height):
        row = new.slice(r, 1)
        shared = Columns(row)
        values = Columns.of_values({c: row[c].to_list() for c in TYPES}, dict(SCHEMA))
        for plan, batch in zip(plans, batches, strict=True):
            for got in (plan.transform(row), plan.transform(shared), plan.transform(values)):
                np.testing.assert_array_equal(got, batch[r:r + 1])
