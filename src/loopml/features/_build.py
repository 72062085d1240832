"""The feature pipeline, built from the contract: one scikit-learn ColumnTransformer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from loopml.core.errors import SchemaError

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

    from loopml.core.contract import Contract

MAX_ONE_HOT = 30  # categories beyond this many share one "infrequent" column


def build_features(contract: Contract, *, columns: Sequence[str], task: str) -> ColumnTransformer:
    """An unfitted ColumnTransformer that turns the raw ``columns`` into numbers.

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
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from loopml.features._transformers import DateParts, FastTargetEncoder, ToFloat, ToText

    if not columns:
        raise SchemaError(
            "There are no feature columns left to learn from.",
            hint="Remove some columns from problem.exclude in loopml.yaml.",
        )
    by_type: dict[str, list[str]] = {}
    for name in columns:
        by_type.setdefault(contract.column(name).type, []).append(name)

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
    if by_type.get("string") and task != "clustering":
        steps.append((
            "high_cardinality",
            make_pipeline(ToText(), _target_encoder(FastTargetEncoder)),
            by_type["string"],
        ))
    for kind, with_time in (("datetime", True), ("date", False)):
        if by_type.get(kind):
            steps.append((
                kind,
                make_pipeline(
                    DateParts(with_time=with_time), SimpleImputer(strategy="median"),
                    StandardScaler(),
                ),
                by_type[kind],
            ))
    if not steps:
        raise SchemaError(
            f"None of the columns {list(columns)} can be used as a feature for {task}.",
            hint="Text columns with many values need a supervised task (a target).",
        )
    return ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=True)


def _target_encoder(cls: type) -> object:
    """A target encoder with seeded, shuffled cross-fitting (the API changed in 1.9)."""
    import sklearn
    from sklearn.model_selection import KFold

    major, minor = (int(p) for p in sklearn.__version__.split(".")[:2])
    if (major, minor) >= (1, 9):
        return cls(cv=KFold(5, shuffle=True, random_state=0))
    return cls(cv=5, shuffle=True, random_state=0)
