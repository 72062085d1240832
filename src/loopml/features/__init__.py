"""The feature pipeline: a scikit-learn ColumnTransformer built from the data contract.

The fitted model object contains it, so serving cannot drift from training; ``compile_features``
turns the fitted transformer into a ``FeaturePlan`` that serves without scikit-learn.
"""

from loopml.features._build import build_features, categorical_count, tree_features
from loopml.features._columns import Columns
from loopml.features._compiled import FeaturePlan, compile_features

__all__ = [
    "Columns", "FeaturePlan", "build_features", "categorical_count", "compile_features",
    "tree_features",
]
