"""Scoring: a model bundle applied to a Polars frame of raw feature columns.

The request path and batch scoring share one ``Scorer`` so that a prediction served over HTTP
and the same row scored from a file agree to the last digit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.core.bundle import to_native
from loopml.core.contract import polars_schema
from loopml.core.convert import to_type
from loopml.core.errors import SchemaError, ServeError, TargetError
from loopml.core.labels import positive_index, positive_label

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from loopml.core.cleaning import CleaningConfig
    from loopml.core.contract import Contract
    from loopml.core.convert import Repair
    from loopml.core.records import ModelBundle

TASKS = ("classification", "regression", "clustering")
PREDICTION = "_prediction"
SCORE = "_score"
BATCH_ROWS = 100_000  # rows scored at once by predict_frame; bounds memory on large files
# Classifiers whose predict is exactly the class of the highest probability (ties included):
# for them the label comes from predict_proba, which saves a second pass through the model.
ARGMAX_CLASSIFIERS = frozenset(
    {
        "LGBMClassifier",
        "XGBClassifier",
        "LogisticRegression",
        "LogisticRegressionCV",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
        "HistGradientBoostingClassifier",
        "KNeighborsClassifier",
        "GaussianNB",
        "CalibratedClassifierCV",
        "FoldBag",  # loopml.train: the argmax of its averaged fold probabilities
    }
)


@dataclass(frozen=True, slots=True)
class Scored:
    """Model output for a frame: labels or values, and class probabilities when there are any."""

    predictions: np.ndarray
    probabilities: np.ndarray | None  # rows x classes, columns in ``Scorer.classes`` order
    scores: np.ndarray | None  # the one number per row stored as ``_score``


class Scorer:
    """A bundle prepared for repeated scoring: the feature steps and the estimator split apart
    so that classification transforms the features once for both labels and probabilities."""

    def __init__(self, bundle: ModelBundle):
        import numpy as np

        if bundle.task not in TASKS:
            raise ServeError(
                f"The model's task is {bundle.task!r}; serving knows {', '.join(TASKS)}.",
                hint="Register the model again with a supported task.",
            )
        model = bundle.model
        if not hasattr(model, "predict"):
            raise ServeError(
                f"The model ({type(model).__name__}) has no predict method, so it cannot score "
                "new rows.",
                hint="Choose a learner that predicts on new data (e.g. KMeans, not DBSCAN).",
            )
        self.task = bundle.task
        self.columns = tuple(bundle.feature_columns)
        self.contract: Contract = bundle.contract.select(self.columns)
        self.schema = polars_schema(self.contract)
        self._steps, self._estimator = _split_pipeline(model)
        self._cleaning = _cleaning(bundle)
        # text read as the training rows were (thousands separators, units, date formats...)
        self.repair = (None if self._cleaning is None or self._cleaning.repair is None
                       else self._cleaning.repair.options())
        self.classes: tuple[Any, ...] | None = None
        self._positive: int | None = None
        self._labels: np.ndarray | None = None
        self._argmax = False
        # a model that turns its own probabilities into labels (the search's ensemble)
        self._decide = getattr(self._estimator, "decide", None)
        if self.task == "classification":
            if not hasattr(self._estimator, "predict_proba"):
                raise ServeError(
                    f"The classifier ({type(self._estimator).__name__}) gives no probabilities.",
                    hint="Train a classifier with predict_proba (calibrate it if needed).",
                )
            raw = getattr(self._estimator, "classes_", None)
            raw = bundle.classes if raw is None else raw
            if raw is None:
                raise ServeError("The classifier does not say which classes it predicts.")
            self.classes = tuple(to_native(c) for c in raw)
            self._positive = _positive_index(self.classes, bundle.positive_label)
            self._labels = np.asarray(raw)
            self._argmax = type(self._estimator).__name__ in ARGMAX_CLASSIFIERS or (
                type(self._estimator).__name__ == "VotingClassifier"
                and getattr(self._estimator, "voting", None) == "soft"
            )

    def score(self, features: pl.DataFrame) -> Scored:
        """Score a frame that already holds exactly the contract's feature columns and types."""
        import numpy as np

        if self._cleaning is not None:
            from loopml.quality import clean_served

            features = clean_served(features, self.contract, self._cleaning)
        data: Any = features
        for step in self._steps:
            data = step.transform(data)
        if self.task != "classification":
            predictions = np.asarray(self._estimator.predict(data))
            # a regression's score is its value, so drift of the output is watched on it
            scores = predictions.astype(np.float64) if self.task == "regression" else None
            return Scored(predictions=predictions, probabilities=None, scores=scores)
        probabilities = np.asarray(self._estimator.predict_proba(data), dtype=np.float64)
        if self._argmax and self._labels is not None:
            predictions = self._labels[probabilities.argmax(axis=1)]
        elif self._decide is not None:  # labels from the same probabilities
            predictions = np.asarray(self._decide(probabilities))
        else:
            predictions = np.asarray(self._estimator.predict(data))
        if self._positive is not None:
            scores = probabilities[:, self._positive]
        else:
            scores = probabilities.max(axis=1)
        return Scored(predictions=predictions, probabilities=probabilities, scores=scores)

    def columns_for(self, scored: Scored) -> list[pl.Series]:
        """``_prediction`` and ``_score`` as Series with the log table's types."""
        import polars as pl

        preds = scored.predictions
        if self.task == "regression":
            prediction = pl.Series(PREDICTION, preds, dtype=pl.Float64, strict=False)
        elif self.task == "clustering":
            prediction = pl.Series(PREDICTION, preds, dtype=pl.Int64, strict=False)
        else:
            prediction = pl.Series(PREDICTION, preds)
            if prediction.dtype == pl.Object:
                prediction = pl.Series(PREDICTION, [to_native(p) for p in preds])
        if scored.scores is None:
            score = pl.Series(SCORE, [None] * len(preds), dtype=pl.Float64)
        else:
            score = pl.Series(SCORE, scored.scores, dtype=pl.Float64)
        return [prediction, score]

    def empty_columns(self) -> list[pl.Series]:
        """``_prediction`` and ``_score`` for no rows, with the types scored rows would get."""
        import polars as pl

        if self.task == "regression":
            dtype = pl.Float64
        elif self.task == "clustering":
            dtype = pl.Int64
        else:
            dtype = pl.Series(list(self.classes or ())).dtype
        return [pl.Series(PREDICTION, [], dtype=dtype), pl.Series(SCORE, [], dtype=pl.Float64)]


def predict_frame(bundle: ModelBundle, frame: pl.DataFrame) -> pl.DataFrame:
    """Score every row of ``frame`` with ``bundle`` and return it with two columns added.

    The feature columns are converted to the contract's types first (text to numbers or UTC
    datetimes, naive datetimes read as UTC); other columns pass through unchanged.
    ``_prediction`` holds the class label, the value or the cluster id; ``_score`` the
    probability of the positive class (binary: ``bundle.positive_label``, else the second
    class), the top probability (multiclass), the predicted value (regression) or null
    (clustering).

    Example::

        scored = predict_frame(bundle, pl.read_csv("new_flights.csv"))
        scored.select("_prediction", "_score").head(2)
    """
    import polars as pl

    scorer = Scorer(bundle)
    conformed = conform(frame, scorer.contract, repair=scorer.repair)
    if conformed.height == 0:  # scikit-learn refuses empty input
        return conformed.with_columns(scorer.empty_columns())
    parts = []
    for chunk in conformed.iter_slices(BATCH_ROWS):
        scored = scorer.score(chunk.select(scorer.columns))
        parts.append(chunk.with_columns(scorer.columns_for(scored)))
    return pl.concat(parts) if len(parts) > 1 else parts[0]


def conform(frame: pl.DataFrame, contract: Contract, *, repair: Repair | None = None
            ) -> pl.DataFrame:
    """``frame`` with every contract column cast to its contract type (text read with
    ``repair`` too, when the source's cleaning repairs values).

    Raises ``SchemaError`` naming the missing columns, or the columns whose values do not
    convert (with the first such value).
    """
    import polars as pl

    missing = [c for c in contract.names if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"The data lacks {len(missing)} feature column(s) the model needs: "
            f"{', '.join(repr(m) for m in missing)}.",
            hint="Add the columns (empty values are fine: the model imputes them).",
        )
    schema = frame.schema  # built anew on each access: once per call
    casts = {
        name: to_type(pl.col(name), schema[name], contract.column(name).type, repair)
        for name, dtype in polars_schema(contract).items()
        if schema[name] != dtype
    }
    if not casts:
        return frame
    try:
        out = frame.with_columns(**casts)
    except pl.exceptions.PolarsError as exc:
        raise SchemaError(
            f"The feature columns cannot be converted to the contract's types: {exc}"
        ) from exc
    problems = []
    for name in casts:
        given = frame[name].is_not_null()
        if schema[name].is_float():  # NaN is a missing value, as null is
            given = given & ~frame[name].is_nan()
        if schema[name] == pl.String:
            given = given & (frame[name].str.strip_chars() != "")
        lost = given & out[name].is_null()
        if lost.any():
            example = frame[name].filter(lost).head(1).item()
            problems.append(
                f"{name!r} should be {contract.column(name).type} but has {int(lost.sum())} "
                f"value(s) that are not (e.g. {example!r})"
            )
    if problems:
        raise SchemaError(
            f"Some values do not fit the model's contract: {'; '.join(problems)}.",
            hint="Fix or blank out those values; empty values are fine, the model imputes them.",
        )
    return out


def _cleaning(bundle: ModelBundle) -> CleaningConfig | None:
    """The cleaning settings the model's training rows went through, if any."""
    if not bundle.cleaning:
        return None
    from loopml.core.cleaning import CleaningConfig

    return CleaningConfig.model_validate(bundle.cleaning)


def _split_pipeline(model: Any) -> tuple[list[Any], Any]:
    """(feature steps, final estimator) of a scikit-learn Pipeline; ([], model) otherwise."""
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        return [], model
    steps = [s for _, s in model.steps[:-1] if s is not None and s != "passthrough"]
    return steps, model.steps[-1][1]


def _positive_index(classes: tuple[Any, ...], positive: Any) -> int | None:
    """Which probability column is ``_score``: the bundle's positive class (binary), else
    none. A bundle without one gets the rule training uses (``loopml.core.labels``)."""
    if len(classes) != 2:
        return None
    try:
        return positive_index(classes, positive_label(classes, positive))
    except TargetError as exc:
        raise ServeError(
            f"The positive label {positive!r} is not one of the model's classes "
            f"{list(classes)}.",
            hint="Set problem.positive_label in loopml.yaml to one of the classes and retrain.",
        ) from exc
