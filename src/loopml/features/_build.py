"""The feature pipeline, built from the contract: one scikit-learn ColumnTransformer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from loopml.core.errors import SchemaError

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

    from loopml.core.contract import Contract

MAX_ONE_HOT = 30  # categories beyond this many share one "infrequent" column
MAX_ORDINAL = 255  # tree view: categories beyond this many share one code


def build_features(
    contract: Contract, *, columns: Sequence[str], task: str, view: str = "dense"
) -> ColumnTransformer:
    """An unfitted ColumnTransformer that turns the raw ``columns`` into numbers.

    ``view="dense"`` (for linear models and neighbours, described below) or ``view="tree"``
    (for tree learners, see ``tree_features``).

    - integer/float: median imputation (with a missing-indicator column) and scaling;
    - boolean: to 0/1, most-frequent imputation;
    - category: one-hot encoding (rare and unseen categories share one column);
    - string (many distinct values, e.g. ids): target encoding with cross-fitting for
      supervised tasks; left out for clustering, where there is no target;
    - datetime/date: year, month, day, weekday (and hour), then imputation and scaling.

    >>> from loopml.core.contract import ColumnSpec, Contract
    >>> c = Contract(source="s", columns=(ColumnSpec(name="x", type="float"),
    ...                                   ColumnSpec(name="k", type="category", allowed=("a",))))
    >>> [name for name, *_ in build_features(c, columns=["x", "k"], task="regression").transformers]
    ['numeric', 'category']
    """
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from loopml.features._transformers import ToFloat, ToText

    if view == "tree":
        return tree_features(contract, columns=columns, task=task)
    by_type = _by_type(contract, columns)

    steps = []
    if by_type.get("integer") or by_type.get("float"):
        numeric = by_type.get("integer", []) + by_type.get("float", [])
        steps.append((
            "numeric",
            make_pipeline(
                ToFloat(), SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
            ),
            numeric,
        ))
    if by_type.get("boolean"):
        steps.append((
            "boolean",
            make_pipeline(ToFloat(), SimpleImputer(strategy="most_frequent")),
            by_type["boolean"],
        ))
    if by_type.get("category"):
        steps.append((
            "category",
            make_pipeline(
                ToText(),
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    max_categories=MAX_ONE_HOT,
                    min_frequency=5,
                    sparse_output=False,
                ),
            ),
            by_type["category"],
        ))
    return _finish(steps, by_type, columns, task, dense=True)


def tree_features(contract: Contract, *, columns: Sequence[str], task: str) -> ColumnTransformer:
    """The feature view for tree learners: numbers as they are (missing values stay NaN, no
    scaling), categories as ordinal codes in the first ``categorical_count`` output columns
    (LightGBM's ``categorical_feature``; unseen categories give NaN), high-cardinality text
    target-encoded, dates split into parts.

    >>> from loopml.core.contract import ColumnSpec, Contract
    >>> c = Contract(source="s", columns=(ColumnSpec(name="x", type="float"),
    ...                                   ColumnSpec(name="k", type="category", allowed=("a",))))
    >>> [n for n, *_ in tree_features(c, columns=["x", "k"], task="regression").transformers]
    ['category', 'numeric']
    """
    import numpy as np
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    from loopml.features._transformers import ToFloat, ToText

    by_type = _by_type(contract, columns)
    steps = []
    if by_type.get("category"):  # first: their output columns are 0..k-1
        steps.append((
            "category",
            make_pipeline(ToText(), OrdinalEncoder(
                handle_unknown="use_encoded_value", unknown_value=np.nan,
                encoded_missing_value=np.nan, max_categories=MAX_ORDINAL, dtype=np.float64,
            )),
            by_type["category"],
        ))
    numeric = by_type.get("integer", []) + by_type.get("float", []) + by_type.get("boolean", [])
    if numeric:
        steps.append(("numeric", ToFloat(), numeric))
    return _finish(steps, by_type, columns, task, dense=False)


def _finish(steps: list, by_type: dict[str, list[str]], columns: Sequence[str], task: str, *,
            dense: bool) -> ColumnTransformer:
    """Both views' last steps: high-cardinality text target-encoded (supervised tasks only),
    dates split into parts (imputed and scaled in the dense view), then the transformer."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from loopml.features._transformers import DateParts, FastTargetEncoder, ToText

    if by_type.get("string") and task != "clustering":
        steps.append((
            "high_cardinality",
            make_pipeline(ToText(), _target_encoder(FastTargetEncoder)),
            by_type["string"],
        ))
    for kind, with_time in (("datetime", True), ("date", False)):
        if by_type.get(kind):
            parts = DateParts(with_time=with_time)
            steps.append((kind, make_pipeline(
                parts, SimpleImputer(strategy="median"), StandardScaler()) if dense else parts,
                by_type[kind]))
    if not steps:
        raise SchemaError(
            f"None of the columns {list(columns)} can be used as a feature for {task}.",
            hint="Text columns with many values need a supervised task (a target).",
        )
    return ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=True)


def categorical_count(contract: Contract, columns: Sequence[str]) -> int:
    """How many of the tree view's first output columns are category codes."""
    return sum(contract.column(c).type == "category" for c in columns)


def _by_type(contract: Contract, columns: Sequence[str]) -> dict[str, list[str]]:
    if not columns:
        raise SchemaError(
            "There are no feature columns left to learn from.",
            hint="Remove some columns from problem.exclude in loopml.yaml.",
        )
    by_type: dict[str, list[str]] = {}
    for name in columns:
        by_type.setdefault(contract.column(name).type, []).append(name)
    return by_type


def _target_encoder(cls: type) -> object:
    """A target encoder with seeded, shuffled cross-fitting (the API changed in 1.9)."""
    import sklearn
    from sklearn.model_selection import KFold

    major, minor = (int(p) for p in sklearn.__version__.split(".")[:2])
    if (major, minor) >= (1, 9):
        return cls(cv=KFold(5, shuffle=True, random_state=0))
    return cls(cv=5, shuffle=True, random_state=0)
