"""The notebook API: ``loopml.fit`` learns from a frame in memory with the search a project run
uses, and ``loopml.load`` reads a saved model back. No project folder, lake or catalog.

The steps are a project run's: infer a contract, conform the frame to it, split train /
validation / test, ``loopml.train.train`` on train + validation, ``loopml.evaluate`` on the
test split once. What is returned is a scikit-learn estimator (``LoopmlClassifier`` or
``LoopmlRegressor``) that holds the fitted pipeline, the leaderboard and the test evaluation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.core.errors import ConfigError, EmptyDataError, SchemaError, TargetError, unknown_name

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl

    from loopml.core.config import TrainingConfig
    from loopml.core.contract import Contract
    from loopml.core.records import Evaluation, TrainResult
    from loopml.pipeline._estimator import LoopmlEstimator

TASKS = ("auto", "classification", "regression")
SOURCE = "notebook"  # the contract's source name: the frame given to fit


def fit(
    X: Any,
    y: Any = None,
    *,
    target: str | None = None,
    task: str = "auto",
    time_budget: float = 60,
    metric: str = "auto",
    seed: int = 0,
    deterministic: bool = False,
    **training: Any,
) -> LoopmlEstimator:
    """Learn ``y`` from ``X`` (or the column ``target`` of the frame ``X``) within
    ``time_budget`` seconds, with the search a project run uses, and return a fitted
    scikit-learn estimator.

    ``X`` is a pandas or Polars frame (or a 2-D array); ``task`` is ``"auto"`` (a
    classification for boolean, text, category and integer targets with few values, a
    regression for numbers), ``"classification"`` or ``"regression"``. Any other
    ``training`` setting of a project (``learners``, ``cv_folds``, ``ensemble`` ...) is
    passed as a keyword. Rows whose target is missing are left out; the test split is held out
    and scored once (``model.evaluation``).

    Example::

        import loopml
        from sklearn.datasets import load_breast_cancer
        X, y = load_breast_cancer(return_X_y=True, as_frame=True)
        model = loopml.fit(X, y, time_budget=30)
        model.predict_proba(X.head())
        model.leaderboard.to_frame()
        model.save("cancer-model"); loopml.load("cancer-model").predict(X.head())
    """
    from loopml.pipeline._estimator import LoopmlClassifier, LoopmlRegressor

    if task not in TASKS:
        raise ConfigError(
            unknown_name("task", str(task), TASKS),
            hint="loopml.fit learns a target: pass task='classification', 'regression' or "
            "'auto'.",
        )
    frame, target_name = training_frame(X, y, target=target)
    frame, dropped = usable_rows(frame, target_name)
    chosen, reason = resolve_task(frame, target_name, task)
    cls = LoopmlClassifier if chosen == "classification" else LoopmlRegressor
    estimator = cls(
        time_budget=time_budget, metric=metric, seed=seed, deterministic=deterministic,
        training=training or None,
    )
    return estimator._fit_frame(frame, target_name, reason=reason, dropped=dropped)


def load(path: str | Path) -> LoopmlEstimator:
    """A model saved by ``model.save(path)`` (or any model bundle folder), ready to predict.

    Example::

        model = loopml.load("cancer-model")
        model.predict(X)
    """
    from loopml.pipeline._estimator import load_estimator

    return load_estimator(path)


# ---- the frame ------------------------------------------------------------------------------


def training_frame(X: Any, y: Any, *, target: str | None) -> tuple[pl.DataFrame, str]:
    """One Polars frame holding the features and the target, and the target's name.

    Either ``y`` (a Series, array or list as long as ``X``) or ``target`` (a column of ``X``)
    names the target, never both.
    """

    frame = as_frame(X)
    if y is not None and target is not None:
        raise TargetError(
            f"Both y and target={target!r} were given; loopml.fit takes one of them.",
            hint="Pass loopml.fit(X, y) or loopml.fit(frame, target='column').",
        )
    if y is None and target is None:
        raise TargetError(
            "No target: loopml.fit needs y or target='column'.",
            hint="Pass loopml.fit(X, y), or loopml.fit(frame, target='column').",
        )
    if target is not None:
        if target not in frame.columns:
            raise TargetError(
                unknown_name("target column", str(target), frame.columns),
                hint="Pass target= with one of the frame's column names.",
            )
        if frame.width < 2:
            raise SchemaError(
                f"The frame holds only the target {target!r}: there are no feature columns.",
                hint="Pass a frame with at least one column besides the target.",
            )
        return frame, target
    labels = as_series(y)
    if labels.len() != frame.height:
        raise SchemaError(
            f"X has {frame.height} rows but y has {labels.len()} values.",
            hint="Pass a y with one value per row of X.",
        )
    name = labels.name if labels.name and labels.name not in frame.columns else "target"
    while name in frame.columns:
        name += "_"
    return frame.with_columns(labels.alias(name)), name


def as_frame(X: Any, names: list[str] | None = None) -> pl.DataFrame:
    """``X`` as a Polars frame with text column names: a Polars or pandas frame, a pyarrow
    table, or a 2-D array (its columns named ``names``, or ``x0``, ``x1`` ...)."""
    import numpy as np
    import polars as pl

    if isinstance(X, pl.LazyFrame):
        X = X.collect()
    if isinstance(X, pl.DataFrame):
        frame = X
    elif type(X).__module__.startswith("pandas") and hasattr(X, "columns"):
        frame = _from_pandas(X)
    elif type(X).__module__.startswith("pyarrow") and hasattr(X, "column_names"):
        frame = pl.from_arrow(X)
    else:
        if isinstance(X, (str, bytes, dict)) or not hasattr(X, "__len__"):
            raise SchemaError(
                f"X must be a table (rows x columns); found {type(X).__name__}.",
                hint="Pass a pandas or Polars DataFrame, or a 2-D numpy array.",
            )
        array = np.asarray(X)
        if array.ndim != 2:
            raise SchemaError(
                f"X must be 2-D (rows x columns); found an array of shape {array.shape}.",
                hint="Reshape a single feature with X.reshape(-1, 1), or pass a DataFrame.",
            )
        cols = names if names is not None and len(names) == array.shape[1] else [
            f"x{i}" for i in range(array.shape[1])
        ]
        frame = pl.DataFrame({c: array[:, i] for i, c in enumerate(cols)})
    if frame.height == 0 or frame.width == 0:
        raise EmptyDataError(
            f"X is empty ({frame.height} rows, {frame.width} columns).",
            hint="Pass a frame with at least one row and one column.",
        )
    return frame


def as_series(y: Any) -> pl.Series:
    """``y`` as a Polars Series: a Polars or pandas Series, a one-column frame, or a 1-D array."""
    import numpy as np
    import polars as pl

    if isinstance(y, pl.Series):
        return y
    if isinstance(y, pl.DataFrame) or (type(y).__module__.startswith("pandas")
                                       and hasattr(y, "columns")):
        frame = as_frame(y)
        if frame.width != 1:
            raise SchemaError(
                f"y must be one column; found {frame.width} columns.",
                hint="Pass the one target column as y, or use target='column'.",
            )
        return frame.to_series()
    if type(y).__module__.startswith("pandas"):
        return _from_pandas(y.to_frame(name=str(y.name) if y.name is not None else "target")
                            ).to_series()
    array = np.asarray(y)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise SchemaError(
            f"y must be 1-D (one value per row); found an array of shape {array.shape}.",
            hint="Pass the one target column as y.",
        )
    try:
        return pl.Series("target", array.tolist() if array.dtype == object else array)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise SchemaError(f"y cannot be read as one column of values: {exc}") from exc


def _from_pandas(data: Any) -> pl.DataFrame:
    import polars as pl

    data = data.rename(columns=str) if any(not isinstance(c, str) for c in data.columns) else data
    if len(set(data.columns)) != len(data.columns):
        raise SchemaError(
            "X has repeated column names; every column needs a name of its own.",
            hint="Rename the columns so that no name appears twice.",
        )
    try:
        return pl.from_pandas(data)
    except (TypeError, ValueError, pl.exceptions.PolarsError, ImportError) as exc:
        raise SchemaError(
            f"The pandas frame cannot be read (mixed types in one column?): {exc}",
            hint="Give each column one type, e.g. with df.astype({...}).",
        ) from exc


def usable_rows(frame: pl.DataFrame, target: str) -> tuple[pl.DataFrame, int]:
    """The rows whose target is known, and how many were left out."""
    import polars as pl

    column = frame[target]
    missing = column.is_null()
    if column.dtype.is_float():
        missing = missing | column.is_nan()
    dropped = int(missing.sum())
    if dropped == frame.height:
        raise TargetError(
            f"The target {target!r} is missing in all {frame.height} rows.",
            hint="Pass the column that holds the values to learn.",
        )
    if not dropped:
        return frame, 0
    return frame.filter(~pl.Series(missing)), dropped


def resolve_task(frame: pl.DataFrame, target: str, task: str) -> tuple[str, str]:
    """The task (the rule ``loopml init`` uses) and one sentence saying why."""
    from loopml.pipeline._init import _resolve_task
    from loopml.quality import infer_contract

    contract = infer_contract(frame.select(target), source=SOURCE, target=target)
    try:
        chosen = _resolve_task(task, contract, target, frame)
    except TargetError as exc:
        raise TargetError(
            exc.message,
            hint="Pass task='classification' or task='regression', or check the target.",
        ) from None
    spec = contract.column(target)
    distinct = frame[target].drop_nulls().n_unique()
    if task != "auto":
        return chosen, f"{chosen} (as asked)"
    noun = f"{distinct} classes" if chosen == "classification" else f"{distinct:,} values"
    return chosen, f"{chosen} (auto: the target is {spec.type} with {noun})"


# ---- one fit ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Fitted:
    """What one fit made: the search's result, the test evaluation and the contract."""

    result: TrainResult
    evaluation: Evaluation
    contract: Contract
    split_sizes: dict[str, int]
    seconds: float
    compiled: Any = None  # the compiled form, when it agreed with the model on the test rows
    serving: dict[str, Any] | None = None  # which form predicts and why


def _batch_ms(model: Any, rows: pl.DataFrame, task: str) -> float:
    """Milliseconds ``model`` takes to score ``rows`` (the best of three)."""
    score = model.predict_proba if task == "classification" else model.predict
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        score(rows)
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 3)


def training_config(
    *, time_budget: float, metric: str, seed: int, deterministic: bool,
    training: dict[str, Any] | None, spent: float = 0.0,
) -> TrainingConfig:
    """The project's ``training`` section for these settings; the budget is what is left of
    ``time_budget`` after ``spent`` seconds of preparation (at least one second)."""
    from pydantic import ValidationError

    from loopml.core.config import TrainingConfig

    extra = dict(training or {})
    unknown = [k for k in extra if k not in TrainingConfig.model_fields]
    if unknown:
        raise ConfigError(
            unknown_name("training setting", unknown[0], TrainingConfig.model_fields),
            hint="loopml.fit takes the settings of a project's 'training' section as keywords.",
        )
    if not isinstance(time_budget, (int, float)) or not time_budget > 0:
        raise ConfigError(
            f"time_budget must be a positive number of seconds; found {time_budget!r}.",
            hint="Pass e.g. time_budget=60.",
        )
    try:
        return TrainingConfig(
            time_budget_s=max(1, math.floor(time_budget - spent)), metric=metric, seed=seed,
            deterministic=deterministic, **extra,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"The training settings are not valid: {problems}.") from None


def fit_frame(
    frame: pl.DataFrame, target: str, *, task: str, settings: dict[str, Any]
) -> Fitted:
    """A project run's model steps on a frame in memory: contract, split, train (the one
    search), evaluate the test split once."""
    from loopml.evaluate import evaluate
    from loopml.pipeline._run import PARITY_ROWS, _positive_label
    from loopml.quality import infer_contract
    from loopml.serve import conform
    from loopml.train import checked_compiled, split, train

    started = time.monotonic()
    contract = infer_contract(frame, source=SOURCE, target=target)
    frame = conform(frame, contract)
    columns = [c for c in frame.columns if c != target]
    positive = _positive_label(frame, target, task, None)
    config = training_config(**settings, spent=time.monotonic() - started)
    splits = split(
        frame, target=target, task=task, valid_size=config.valid_size,
        test_size=config.test_size, seed=config.seed,
    )
    result = train(
        splits, contract=contract, columns=columns, task=task, target=target, config=config,
        positive_label=positive,
    )
    evaluation = evaluate(  # the test split, scored once
        result.model, splits.test, task=task, target=target,
        metric=result.leaderboard.metric, positive_label=positive, seed=config.seed,
    )
    # predictions take the compiled form when it gives the model's answers on the test rows
    rows = splits.test.select(columns).head(PARITY_ROWS)
    compiled, serving = checked_compiled(result.model, rows)
    if compiled is not None:  # which form scores a batch faster (a forest: often the model)
        serving["batch_ms"] = {form: _batch_ms(model, rows, task)
                               for form, model in (("compiled", compiled),
                                                   ("scikit-learn", result.model))}
    return Fitted(
        result=result, evaluation=evaluation, contract=contract.select(columns),
        split_sizes=splits.sizes, seconds=round(time.monotonic() - started, 3),
        compiled=compiled, serving=serving,
    )
