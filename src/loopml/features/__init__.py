"""The feature pipeline: a scikit-learn ColumnTransformer built from the data contract.

The fitted model object contains it, so serving cannot drift from training.
"""

from loopml.features._build import build_features, categorical_count, tree_features

__all__ = ["build_features", "categorical_count", "tree_features"]
